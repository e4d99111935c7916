"""The service boundary between operators and the town's files.

On a town's server the database, the hash key and the provider's credentials belong
to the service's Unix user alone. An operator's `tocsin` (the console or any verb)
does not open them: it hands its command, its terminal and the files it names to
`tocsin service` over a Unix socket. The kernel tells the service who is calling
(SO_PEERCRED); the service runs the command as itself, on behalf of that user, with
the role the town's config gives them. A single-user install and the demo have no
service and run everything in the caller's process.
"""
