// Package export is the write side of redraft's output: it writes the
// datasets (rl, sft, pairs, verl) as Parquet shards with parquet-go, the
// manifest, the dataset card and the failures record, says which files of an
// output directory redraft owns, and merges the shard runs of a sharded run.
//
// Its exported types are the output contract that readers rely on: the row
// types and their column names, the schema versions (RLSchema, ...; each
// described in schemas/), the Manifest and ReadManifest, and ReadRows, which
// reads a shard back with Arrow, independently of the writer. The readers
// are packages of their own that use only this contract: validate checks a
// directory against it, audit reports on the rl data. export never imports
// them.
//
// Guarantees: a shard is written under a hidden temporary name and appears
// under its final name only when finished; a group is written whole into one
// shard; the manifest is written atomically and never holds an API key.
package export
