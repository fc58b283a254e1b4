"""Reports of one run: the JSON acceptance record (schema'd), HTML to sign, JUnit XML, and diffs."""
