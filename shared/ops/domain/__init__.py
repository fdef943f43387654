"""Pure operations rules: lag, rates and dead-letter records, from data already read."""
