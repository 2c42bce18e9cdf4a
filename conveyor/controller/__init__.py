"""The controller: the update, wiring the stages in order (see :mod:`.update`)."""
