//! Tests only (see `tests/`): one trace id across a trigger, the import and the event it
//! publishes; SIGTERM to a service binary mid-run loses nothing; `/metrics` of a served service.
