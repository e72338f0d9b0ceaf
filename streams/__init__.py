"""The contract at the edge: settings, topics, envelope decoding, DLQ routing, producers."""
