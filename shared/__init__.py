"""What the daemon and its clients share: the API's models, its error codes and the async client."""
