//! State-machine tests from compact segment scripts, grouped by how connections end.
