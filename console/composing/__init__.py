"""Writing a message: GSM-7 and UCS-2, segments and cost, templates and their
placeholders, the STOP mention. Pure functions, no I/O."""
