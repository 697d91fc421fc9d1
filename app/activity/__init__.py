"""Actions: typed customer events, their declared payload schemas, and the customer feed."""
