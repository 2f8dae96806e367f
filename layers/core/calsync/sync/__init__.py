"""The provider-independent sync engine: jobs (SQS FIFO), the source protocol, the engine."""
