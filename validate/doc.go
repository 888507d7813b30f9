// Package validate checks an output directory against its contract, as a
// consumer would see it: the manifest, the Parquet shards read back with
// Arrow, the released schema descriptions of schemas/ and the failures
// record.
//
// It is independent of the writer. It uses only export's public contract
// (the manifest and row types, schema versions and names) and recomputes
// everything else itself: shard bytes and sha256, columns (DescribeFile, in
// the schema language of schemas/), group statistics and advantages under the
// manifest's estimator (it does not import the rewards package), and, when
// Options.Tokens is set, every sft and rl token track with the tokenizer
// (labels included: a mask shifted by one token is a violation).
// A bug in the writer therefore shows as a violation here, not as a second
// copy of the same bug.
//
// Guarantees:
//
//   - Dir never modifies the directory it checks.
//   - Its error is reserved for a directory that cannot be validated at all
//     (no readable manifest, a cancelled context); every other problem is a
//     Violation in the Report, naming the dataset, the shard, the row and,
//     where there is one, the row's id, and for a count mismatch both
//     numbers. The directory is valid when Report.OK.
//   - No silent short read: a shard that yields fewer rows than its footer
//     or the manifest lists is a violation, never a shorter check.
//   - Row checks of one shard stop after Options.MaxViolations violations
//     (default 100); shard- and dataset-level checks always run.
package validate
