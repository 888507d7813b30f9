// Package audit reads an rl dataset back from its Parquet shards and reports
// what a trainer would learn from it: rewards, reward components,
// advantages, pass@k and maj@k, turn-to-turn transitions, answer changes,
// consensus, judge agreement, length, entropy and judge-flagged rows, for all
// rows and per data source, turn and model (see docs/audit.md for the
// metrics).
//
// It is a reader: it uses export's public contract only (the manifest and
// the rl schema as written to the shards, read with Arrow) and never writes
// to the directory it audits. Path takes an output directory (the rl shards
// its manifest lists, else data/rl/*.parquet), a directory of Parquet files,
// or one shard; Dir is Path with default Options.
//
// Guarantees:
//
//   - Determinism. Row groups are scanned by a pool of Options.Workers and
//     their partial results merged in (shard, row group) order; a group split
//     across row groups or shards is joined before it is counted. The report
//     is the same for any number of workers: histogram bins are fixed before
//     the scan, from the Parquet statistics or, where a row group lacks
//     them, from a first pass over those columns.
//   - No silent short reads. A row group that yields fewer rows than its
//     footer lists is an error naming both numbers, and so is an output
//     directory whose shards hold other than the rows its manifest lists.
//   - Self-contained output. Report.WriteHTML writes one page with inline CSS
//     and SVG and no external resource; every number it shows that is marked
//     data-metric equals the JSON of the Report (Report.WriteText is the
//     terminal form, Compare the difference of two runs).
package audit
