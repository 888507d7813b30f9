// Package mathgrade grades model responses to math problems: it extracts the
// final answer a response states and compares it by value with a reference
// answer.
//
// # Extraction
//
// An answer counts only when the response states it as final. Extract
// looks, in this order of precedence:
//
//  1. "answer_tag": the last <answer>...</answer> block.
//  2. Final-answer statements, of which the one that comes last in the
//     text wins (an intermediate box or an early "final answer" phrase
//     does not override the conclusion):
//     "final_answer": "final answer is X" / "Final Answer: X" (any case);
//     "boxed" / "fbox": the last complete \boxed{...} or \fbox{...} with
//     balanced braces (also "\boxed 5"), joined with the boxes before it
//     into one set when the text between two boxes is short and holds a
//     connector ("and", "or") or no words at all (\boxed{1}, \boxed{2});
//     "hash": "#### X" (GSM8K reference format);
//     "answer_colon": "Answer: X" starting a line or sentence (not "we
//     check our answer: ...") or a line starting "A: X" (the GSM8K
//     example-solution format);
//     "answer_heading": a markdown heading line "# Answer" (one to six
//     '#', any case, an optional colon) and the answer on the next
//     non-blank line (the PRM800K solution format).
//     An empty box after all of them states nothing (no_answer:empty_boxed).
//  3. "the_answer_is": the last "answer is X" ("The answer is X", "the
//     correct answer is X"), only when there is no statement of tier 2, so
//     that "I think the answer is correct" after a box does not override it.
//  4. "choice": "the correct option is (B)", "option (B) is correct".
//  5. "bare": a bare answer (see below).
//
// The text after a marker is cut at the end of its line (or at the end of a
// display-math block that starts there) and at the end of its sentence, "I
// hope it is correct" and trailing punctuation are dropped, and a single
// math span or box in it is unwrapped. When what is left is prose ("The
// volume of the box is 120") the part after the last " is " is taken, or,
// failing that, its only number.
//
// Reasoning inside <think>...</think> is ignored; a response that opens
// <think> and never closes it states nothing (and, unless the server said
// otherwise, was cut off). Chat-template tails (<|im_start|>, <|im_end|>,
// <|endoftext|>) are dropped.
//
// There is no "last number" fallback: a response with no marker states
// nothing unless it is a bare answer. A text is a bare answer when it is at
// most 160 bytes long, has no line break outside math delimiters and has no
// sentence end followed by more text. Then, if it holds exactly one math span
// ($...$, \(...\), \[...\], $$...$$) preceded by words ("Answer $9$", "The
// identity matrix is $...$."), the span is the answer; otherwise the whole
// text, without math delimiters and a trailing period, is. So "18",
// "$\frac12$" and "Paris" are their own answers, while a cut-off
// chain-of-thought is long or multi-line and states nothing.
//
// A reference (gold) answer goes through the same extraction, so it may be a
// bare answer or a full reference solution ("... A: 18", "#### 18",
// "\boxed{..}"); when nothing is found the whole reference is the answer.
//
// # Cut-off responses
//
// A response that states nothing is no_answer:cut_off when it was cut off
// and no_answer:not_stated when it ended without stating an answer. When
// the server reported how it ended (GradeFinished with its finish_reason),
// that decides: "length" is cut off, and then a bare answer does not count
// either (a truncated "so she makes 9 * 2 = 18" is a fragment of
// reasoning); any other finish_reason ("stop") is not cut off, however
// the text ends. Only when it is unknown (Grade, recorded text) is it
// guessed from the text: an unclosed <think> or \boxed{, or a last
// character that does not end a sentence or a formula, reads as cut off.
//
// # Comparison
//
// Answers are parsed into a small expression tree (LaTeX and plain text)
// and compared by value:
//
//   - Numbers are exact rationals (math/big): integers, decimals, fractions
//     (\frac, \dfrac, \tfrac, \frac12, a/b), mixed numbers (918\frac12),
//     thousands separators (1,000,000, 1{,}000, 1\,000, 1\!,000, 1 000)
//     versus lists ("3, 5"), scientific notation, signs including U+2212.
//     "1,22" or "1000,99" (one comma, not three digits after it) is a
//     two-element list, but compared with a single number it is read as a
//     decimal comma (rule equal:decimal_comma).
//   - Percent: p% equals p (the sign omitted) and p/100.
//   - Units (\text{cm}, "miles"), degrees (^\circ), currency (\$, €) and
//     \text{} wrappers around numbers are dropped; "thousand", "million",
//     "billion" scale the number.
//   - Expressions with square roots, pi, powers, trigonometric and
//     logarithmic functions, complex numbers (i) and variables are evaluated
//     at five deterministic points (fixed seed, small integers for the
//     variables). Rational operations are exact, so polynomial and rational
//     identities are decided exactly (equal:expression); irrational values
//     are compared in float64 with relative tolerance 1e-9 (equal:numeric).
//     The symbol e is Euler's number, i the imaginary unit, \log is base
//     10 and \ln natural. Uninterpreted functions f(x) and indexed symbols
//     F_{n-1} get
//     deterministic pseudo-random values, so f(x) differs from f(y).
//   - A decimal written with d places and at least two significant digits
//     matches an exact value that is not itself a plain number when it is
//     that value rounded to d places (equal:rounded, the tolerance is stated
//     in the rule). This is the only tolerance: 5.001 is not 5.
//   - Relations: "x = 5", "k = 1" and "(p,q) = (3,2)" assign a value to a
//     name (a symbol, function value, ratio or tuple of names) and compare
//     as that value; a chain "x = 5+5+1 = 11" compares as its last side and
//     an approximation "x = 1/3 \approx 0.33" as its last exact side. An
//     equation that is not an assignment ("a + 3z = 0") is an answer in
//     itself: two equations are equal when L1-R1 = k (L2-R2) for a constant
//     k != 0 (k > 0 for inequalities, after turning > into <).
//   - Intervals and unions with their bracket types, "x \in S", and
//     inequalities in one name ("-2 \le x \le 7", "x > 5", "1 \le |z| \le
//     2") compare as sets of intervals.
//   - \{...\} sets and bare lists ("1, 2", "6 and 8", \boxed{1}, \boxed{2})
//     are unordered and compare as sets; parenthesised tuples are ordered;
//     a set never equals a tuple. A bare list compared with a tuple is read
//     as that tuple without brackets. "a \pm b" is the list {a+b, a-b}.
//     A prediction of alternatives ("5 or 6") against a single reference
//     answer states nothing definite (no_answer:ambiguous).
//   - Matrices (pmatrix, bmatrix, array, ...) compare element-wise;
//     sums and products of constant matrices are evaluated.
//   - Number bases: 204_5 equals 204_{5}; a plain 204 is read in the base of
//     the other side.
//   - Text answers compare after lower-casing and dropping \text{},
//     punctuation, articles and extra spaces; multiple-choice letters
//     compare as letters ("(C)", \text{C}, \textbf{C}); number words
//     ("five", "twenty-one") are numbers.
//
// # Limits
//
// Grade never panics and never executes model text. Responses over
// Options.MaxResponseBytes are not graded (no_answer:too_long); each grading
// call has a step budget and a deadline (Options.Timeout, error:timeout);
// parsers have recursion-depth and token limits, and exact arithmetic has
// size limits beyond which it falls back to float64. A Grader holds no
// mutable state and is safe for concurrent use; the same inputs always give
// the same Result unless the deadline is hit.
//
// # Differences from other graders
//
// The conformance tests in testdata/public_cases.jsonl come from Math-Verify,
// verl, NeMo-Skills, hendrycks/math, open-instruct and trl. Their "call"
// option is interpreted as: compare_strings(gold, pred) and verify(parse(gold),
// parse(pred)) grade the prediction as a response against the gold (both
// extracted); is_equiv, math_equal, accuracy_reward and the open-instruct
// verifiers grade the prediction against the label. Options redraft has no
// equivalent for (Math-Verify's precision, strict=false variable renaming,
// allow_set_relation_comp=false, the "expr"-only last-number extraction) do
// not change redraft's behaviour; the cases where that changes the verdict
// are listed with reasons in testdata/public_case_exceptions.jsonl.
package mathgrade
