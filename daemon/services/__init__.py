"""The rules: auth, users, vectors, events. No HTTP here, and no SQL: services call stores."""
