"""The command-line front: `vigil hash`, `vigil hashset`, `vigil scan`, `vigil demo`."""
