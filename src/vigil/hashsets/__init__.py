"""Hash lists: the formats police and others publish, parsed as streams into entries."""
