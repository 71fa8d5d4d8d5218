"""Pure parsing of capture requests: bytes in, validated rrweb batches out."""
