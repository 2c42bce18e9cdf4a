"""Files: the one atomic writer, and the checks on files a user names."""
