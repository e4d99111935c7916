"""SMS providers: one module each behind the interface in console.sending.providers.base."""
