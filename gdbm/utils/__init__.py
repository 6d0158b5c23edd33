"""What every layer uses: errors that name file and line, atomic file writes, YAML configs,
periodic boundaries, process groups, the version. Nothing here imports the rest of gdbm."""
