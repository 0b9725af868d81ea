"""Real-time pipeline: sources → stylizer (through a backend) → sinks."""
