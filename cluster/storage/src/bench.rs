//! `kdss bench storage`: placeholder until the benchmark lands.
