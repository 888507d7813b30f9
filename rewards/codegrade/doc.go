// Package codegrade grades model responses to programming tasks by running
// them: it extracts the program a response states, runs it with the task's
// tests in a sandbox (rewards/execute) and returns a Verdict with per-test
// components.
//
// # Extraction
//
// Responses are untrusted text; Extract never runs anything and never
// panics (FuzzExtractCode). <think>...</think> sections are dropped first; a
// response that opens <think> and never closes it states nothing. Then,
// among the fenced code blocks (a line starting, after at most three
// spaces, with three or more backticks or tildes; the info string's first
// word is the language; a line of at least as many of the same character
// closes the block; a block still open at the end of the text runs to the
// end):
//
//  1. "python_block": the last block tagged python, py, python3 or py3 (any
//     case);
//  2. "bare_block": else the last block with no language;
//  3. nothing, when every block is tagged with another language;
//  4. "whole": when there is no fenced block at all, the whole response is
//     the program (HumanEval-style completions that continue the prompt).
//
// A block that was never closed gets the suffix "_unclosed" on its rule. A
// block of only whitespace states nothing. Indentation is kept, so an
// indented function body is a valid completion.
//
// # Running
//
// The program is Task.Prompt followed by the extracted code (HumanEval:
// prompt + completion; a full function definition after the prompt
// redefines it). A fixed harness (harness.py) runs inside the sandbox with
// python3 -I:
//
//   - it parses the tests; with an entry point and a top-level
//     check(candidate) function (HumanEval), every statement of check's body
//     that contains an assert is one test (a loop of asserts is one test),
//     run with candidate bound to the entry point; otherwise every top-level
//     statement that contains an assert is one test. Statements without an
//     assert run in order between the tests; when one raises, the tests
//     after it do not run (they count as failed);
//   - it compiles the program (a SyntaxError is reason syntax_error), runs
//     it with __name__ = "solution" (so an if __name__ == "__main__" block
//     does not run) and stdin at end of file, then the tests' other
//     top-level code, in the same namespace (HumanEval's helpers);
//   - each test runs on its own: an exception fails that test and the next
//     one still runs;
//   - it reports on file descriptor 3, every line prefixed with a random
//     nonce given on stdin, and the verdict needs its final "done": a
//     program that exits (sys.exit, os._exit) or crashes before the tests
//     end does not pass, and lines a program writes to fd 3 without the
//     nonce are ignored.
//
// The harness shares its process with the program, so a program written to
// defeat it (reading the nonce from the harness's frames, patching builtins,
// returning objects equal to everything) can forge a pass: the sandbox
// protects the host, not the verdict from a deliberate attack on the
// harness.
//
// # Verdict
//
// Correct (the all-pass reward) is true when every test passed and there
// was at least one. Passed/Total and PassRate (0 when Total is 0) count the
// tests; Tests holds each test's source, pass and error; Message is the
// first failing test's source and error, or the error that stopped the
// program. Reason is "" when Correct, else the first that applies of:
// no_code, unsupported_language, sandbox_error (could not start),
// timeout, cpu_time, output_limit, file_size, canceled (the sandbox's
// reasons), syntax_error, tests_error (the tests themselves do not parse or
// raise outside check), memory (a MemoryError), runtime_error (the program
// raised while loading, SystemExit included, or the entry point is
// missing), crashed (the process ended before the tests finished), no_tests
// (the tests hold no assert), tests_failed. Stdout and stderr are kept up
// to the sandbox's cap with the truncation recorded, with the exit status,
// the signal and the wall time.
//
// Only Python runs today; Task.Language leaves room for other languages
// (any other value is unsupported_language).
package codegrade
