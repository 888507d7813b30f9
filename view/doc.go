// Package view is the rollout browser behind "redraft view DIR": a local
// HTTP server that shows the rows of an output directory (a run, a splice,
// a merged sharded run) as groups, chat trajectories with their trained and
// masked spans, and tokens with their labels and logprobs.
//
// It reads lazily. Opening a run reads the manifest and the shards' footers
// only (row groups and their row counts), so the first page is served before
// any row beyond it is read. A page reads only the row groups that hold its
// rows, and of those only the columns it shows. Filtering and sorting use an
// index built in the background from a few small columns (task_id,
// data_source, turn, transition, reward, advantage, finish_reason, reasons
// and flags: about 35 bytes a row), never from prompts, responses or token
// tracks; text search streams the text columns of the candidate rows' row
// groups and stops at TextLimit matches.
//
// Everything the page needs (its CSS and a few lines of script) is embedded:
// the page fetches nothing from anywhere but the server that served it.
package view
