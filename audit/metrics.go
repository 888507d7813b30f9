package audit

import (
	"math"
	"math/bits"
	"sort"
	"strconv"
)

// histBins is the number of equal-width bins of a continuous histogram;
// maxDistinct values or fewer get one bin each.
const (
	histBins    = 20
	maxDistinct = 10
)

// dist accumulates a numeric distribution: moments (Welford, merged with
// Chan et al.'s formula), extremes, distinct values while they are few, and
// equal-width bins over a range fixed before the scan (from the Parquet
// statistics), so partial results merge exactly.
type dist struct {
	n, mean, m2 float64
	min, max    float64
	lo, hi      float64
	bins        [histBins]int64
	// distinct values and their counts, in order of first appearance, while
	// there are at most maxDistinct (many: more, distinct is nil).
	distinct []valueCount
	many     bool
}

type valueCount struct {
	v float64
	n int64
}

func newDist(r valueRange) *dist {
	return &dist{lo: r.lo, hi: r.hi}
}

// count adds n to value v's count while values are few.
func (d *dist) count(v float64, n int64) {
	if d.many {
		return
	}
	for i := range d.distinct {
		if d.distinct[i].v == v {
			d.distinct[i].n += n
			return
		}
	}
	if len(d.distinct) == maxDistinct {
		d.distinct, d.many = nil, true
		return
	}
	d.distinct = append(d.distinct, valueCount{v, n})
}

func (d *dist) add(v float64) {
	if math.IsNaN(v) {
		return
	}
	if d.n == 0 || v < d.min {
		d.min = v
	}
	if d.n == 0 || v > d.max {
		d.max = v
	}
	d.n++
	delta := v - d.mean
	d.mean += delta / d.n
	d.m2 += delta * (v - d.mean)
	d.count(v, 1)
	i := 0
	if w := (d.hi - d.lo) / histBins; w > 0 {
		i = int((v - d.lo) / w)
	}
	d.bins[max(0, min(i, histBins-1))]++
}

func (d *dist) merge(o *dist) {
	if o.n == 0 {
		return
	}
	if d.n == 0 {
		d.min, d.max = o.min, o.max
	} else {
		d.min, d.max = math.Min(d.min, o.min), math.Max(d.max, o.max)
	}
	n := d.n + o.n
	delta := o.mean - d.mean
	d.mean += delta * o.n / n
	d.m2 += o.m2 + delta*delta*d.n*o.n/n
	d.n = n
	for i := range d.bins {
		d.bins[i] += o.bins[i]
	}
	if o.many {
		d.distinct, d.many = nil, true
	}
	for _, c := range o.distinct {
		d.count(c.v, c.n)
	}
}

// Dist is a distribution in the report.
type Dist struct {
	N         int64    `json:"n"`
	Mean      *float64 `json:"mean"`
	Std       *float64 `json:"std"`
	Min       *float64 `json:"min"`
	Max       *float64 `json:"max"`
	Histogram []Bin    `json:"histogram"`
}

func (d *dist) summary() Dist {
	s := Dist{N: int64(d.n), Histogram: []Bin{}}
	if d.n == 0 {
		return s
	}
	s.Mean, s.Min, s.Max = fp(d.mean), fp(d.min), fp(d.max)
	if d.n > 1 {
		s.Std = fp(math.Sqrt(d.m2 / (d.n - 1)))
	}
	if !d.many {
		for _, c := range d.distinct {
			s.Histogram = append(s.Histogram, Bin{Lo: c.v, Hi: c.v, Count: c.n})
		}
		sort.Slice(s.Histogram, func(i, j int) bool { return s.Histogram[i].Lo < s.Histogram[j].Lo })
		return s
	}
	w := (d.hi - d.lo) / histBins
	for i, c := range d.bins {
		s.Histogram = append(s.Histogram, Bin{Lo: d.lo + float64(i)*w, Hi: d.lo + float64(i+1)*w, Count: c})
	}
	s.Histogram[histBins-1].Hi = d.hi
	return s
}

func fp(v float64) *float64 { return &v }

func b2i64(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func ratio(a, b int64) *float64 {
	if b == 0 {
		return nil
	}
	return fp(float64(a) / float64(b))
}

// comoment accumulates the Pearson correlation of (x, y), mergeable.
type comoment struct {
	n, mx, my, cxy, m2x, m2y float64
}

func (c *comoment) add(x, y float64) {
	c.n++
	dx := x - c.mx
	c.mx += dx / c.n
	dy := y - c.my
	c.my += dy / c.n
	c.cxy += dx * (y - c.my)
	c.m2x += dx * (x - c.mx)
	c.m2y += dy * (y - c.my)
}

func (c *comoment) merge(o *comoment) {
	if o.n == 0 {
		return
	}
	if c.n == 0 {
		*c = *o
		return
	}
	n := c.n + o.n
	dx, dy := o.mx-c.mx, o.my-c.my
	c.cxy += o.cxy + dx*dy*c.n*o.n/n
	c.m2x += o.m2x + dx*dx*c.n*o.n/n
	c.m2y += o.m2y + dy*dy*c.n*o.n/n
	c.mx += dx * o.n / n
	c.my += dy * o.n / n
	c.n = n
}

func (c *comoment) corr() *float64 {
	if c.n < 2 || c.m2x == 0 || c.m2y == 0 {
		return nil
	}
	return fp(c.cxy / math.Sqrt(c.m2x*c.m2y))
}

// Length bins: [0, 32), [32, 64), ... doubling, the last open-ended.
const lengthBins = 14

func lengthBin(l int64) int {
	return max(0, min(bits.Len64(uint64(max(l, 0)))-5, lengthBins-1))
}

func lengthBinEdges(i int) (lo int64, hi int64) {
	if i == 0 {
		return 0, 32
	}
	lo = int64(1) << (i + 4)
	if i == lengthBins-1 {
		return lo, -1
	}
	return lo, lo * 2
}

type compAcc struct {
	dist    *dist
	weights map[float64]int64
	null    int64
	reasons map[string]int64
}

// sliceAcc accumulates every metric of one slice (all rows, one data source,
// one turn, one model).
type sliceAcc struct {
	dim, key string

	rows, groups, nullReward int64
	nullReasons              map[string]int64
	graded, correct          int64
	reward, adv, entropy     *dist
	comps                    map[string]*compAcc

	zeroVar int64

	passGroups, pass, maj, majConsensus, majTies, majNoAnswer int64
	kCounts                                                   map[int]int64

	trans               map[string]int64
	revisions, changed  int64
	consGroups, consOK  int64
	consRatio           float64
	consRatioN          int64
	judge               [2][2]int64 // [judge pass][correct]
	flagKnown, flagged  int64
	lenTokens, lenChars int64
	lenCorr             comoment
	lenBins             [lengthBins]struct {
		n, rewardN int64
		rewardSum  float64
	}
	lenDist                  *dist
	finishKnown, truncated   int64
	entropyRows, entropyToks int64
	failed                   int64

	// Exploration and exploitation (B-STaR), per group with a graded row:
	// sums of distinct correct responses, distinct correct answers and
	// distinct answers; per mixed group (correct and incorrect rows with a
	// reward): correct-over-incorrect reward pairs won (ties count half),
	// and the within-group reward gaps.
	explGroups                                 int64
	distinctCorrResp, distinctCorrAns, distAns int64
	mixedGroups, sepPairs                      int64
	sepWins, gapSum                            float64

	// scratch for addGroup
	votes     []vote
	good, bad []float64
}

type auditRanges struct{ reward, adv, comp, entropy valueRange }

func newSliceAcc(dim, key string, r *auditRanges) *sliceAcc {
	return &sliceAcc{
		dim: dim, key: key,
		nullReasons: map[string]int64{}, comps: map[string]*compAcc{}, kCounts: map[int]int64{}, trans: map[string]int64{},
		reward: newDist(r.reward), adv: newDist(r.adv), entropy: newDist(r.entropy),
		lenDist: newDist(valueRange{}),
	}
}

func (s *sliceAcc) comp(name string, r *auditRanges) *compAcc {
	c := s.comps[name]
	if c == nil {
		c = &compAcc{dist: newDist(r.comp), weights: map[float64]int64{}, reasons: map[string]int64{}}
		s.comps[name] = c
	}
	return c
}

// addGroup adds the rows of one group that fall in this slice; whole says
// they are the whole group, zeroVar whether the whole group's present
// rewards are all equal (or fewer than two).
func (s *sliceAcc) addGroup(rows []auditRow, whole, zeroVar bool, r *auditRanges) {
	s.groups++
	if zeroVar {
		s.zeroVar++
	}
	graded, anyCorrect := 0, false
	for i := range rows {
		row := &rows[i]
		s.rows++
		if row.failed {
			s.failed++
		}
		if row.hasReward {
			s.reward.add(row.reward)
		} else {
			s.nullReward++
			s.nullReasons[row.rewardReason]++
		}
		if row.correct >= 0 {
			s.graded++
			graded++
			if row.correct == 1 {
				s.correct++
				anyCorrect = true
			}
		}
		for _, c := range row.comps {
			ca := s.comp(c.name, r)
			ca.weights[c.w]++
			if c.has {
				ca.dist.add(c.value)
			} else {
				ca.null++
				ca.reasons[c.reason]++
			}
		}
		if row.hasAdv {
			s.adv.add(row.adv)
		}
		if row.transition != "" {
			s.trans[row.transition]++
		}
		if row.hasJudge && row.correct >= 0 {
			s.judge[b2i(row.judge >= 0.5)][row.correct]++
		}
		if row.flagged >= 0 {
			s.flagKnown++
			if row.flagged == 1 {
				s.flagged++
			}
		}
		if row.lengthTokens {
			s.lenTokens++
		} else {
			s.lenChars++
		}
		s.lenDist.add(float64(row.length))
		b := &s.lenBins[lengthBin(row.length)]
		b.n++
		if row.hasReward {
			b.rewardN++
			b.rewardSum += row.reward
			s.lenCorr.add(float64(row.length), row.reward)
		}
		if row.finish != "" {
			s.finishKnown++
			if row.finish == "length" {
				s.truncated++
			}
		}
		if row.nlpN > 0 {
			s.entropy.add(row.nlpSum / float64(row.nlpN))
			s.entropyRows++
			s.entropyToks += int64(row.nlpN)
		}
	}
	if whole && rows[0].consCorrect >= 0 {
		s.consGroups++
		if rows[0].consCorrect == 1 {
			s.consOK++
		}
	}
	if whole && rows[0].hasConsRatio {
		s.consRatio += rows[0].consRatio
		s.consRatioN++
	}
	if graded == 0 {
		return
	}
	s.exploreExploit(rows)
	s.passGroups++
	s.kCounts[len(rows)]++
	if anyCorrect {
		s.pass++
	}
	// maj@k: the group's consensus verdict when the slice is the whole group
	// and consensus ran; else the most frequent extracted answer, ties going
	// to the answer stated first (lowest sample position).
	if whole && rows[0].consCorrect >= 0 {
		s.majConsensus++
		if rows[0].consCorrect == 1 {
			s.maj++
		}
		return
	}
	// votes: one per distinct answer in order of first appearance, with the
	// verdict of that first row (linear search: groups are small).
	votes := s.votes[:0]
	for i := range rows {
		if !rows[i].hasAnswer {
			continue
		}
		if j := findVote(votes, rows[i].answer); j >= 0 {
			votes[j].n++
		} else {
			votes = append(votes, vote{answer: rows[i].answer, n: 1, correct: rows[i].correct == 1})
		}
	}
	// The first answer with the most votes wins; a tie is another answer
	// with as many.
	best, tie := -1, false
	for j := range votes {
		if best < 0 || votes[j].n > votes[best].n {
			best, tie = j, false
		} else if votes[j].n == votes[best].n {
			tie = true
		}
	}
	switch {
	case best < 0:
		s.majNoAnswer++
	case votes[best].correct:
		s.maj++
	}
	if tie {
		s.majTies++
	}
	clear(votes)
	s.votes = votes[:0]
}

type vote struct {
	answer  string
	n       int
	correct bool
}

func findVote(votes []vote, a string) int {
	for j := range votes {
		if votes[j].answer == a {
			return j
		}
	}
	return -1
}

// exploreExploit adds one group's (with a graded row) exploration and
// exploitation numbers: how many different correct responses and answers
// its samples found, and how well the reward orders its correct samples
// above its incorrect ones.
func (s *sliceAcc) exploreExploit(rows []auditRow) {
	s.explGroups++
	// Distinct counts: a row counts when no earlier row of the group has the
	// same value (quadratic in the group size, which is small; large groups
	// use a set).
	var resp, corrAns, ans int64
	if len(rows) <= 64 {
		for i := range rows {
			r := &rows[i]
			firstAns, firstCorrAns, firstResp := r.hasAnswer, r.hasAnswer && r.correct == 1, r.correct == 1
			for j := 0; j < i && (firstAns || firstCorrAns || firstResp); j++ {
				p := &rows[j]
				if p.hasAnswer && r.hasAnswer && p.answer == r.answer {
					firstAns = false
					if p.correct == 1 {
						firstCorrAns = false
					}
				}
				if p.correct == 1 && p.respHash == r.respHash {
					firstResp = false
				}
			}
			resp += b2i64(firstResp && r.correct == 1)
			corrAns += b2i64(firstCorrAns)
			ans += b2i64(firstAns)
		}
	} else {
		respSet := map[uint64]bool{}
		corrAnsSet, ansSet := map[string]bool{}, map[string]bool{}
		for i := range rows {
			r := &rows[i]
			if r.hasAnswer {
				ansSet[r.answer] = true
			}
			if r.correct == 1 {
				respSet[r.respHash] = true
				if r.hasAnswer {
					corrAnsSet[r.answer] = true
				}
			}
		}
		resp, corrAns, ans = int64(len(respSet)), int64(len(corrAnsSet)), int64(len(ansSet))
	}
	s.distinctCorrResp += resp
	s.distinctCorrAns += corrAns
	s.distAns += ans
	good, bad := s.good[:0], s.bad[:0]
	for i := range rows {
		r := &rows[i]
		if r.correct >= 0 && r.hasReward {
			if r.correct == 1 {
				good = append(good, r.reward)
			} else {
				bad = append(bad, r.reward)
			}
		}
	}
	s.good, s.bad = good[:0], bad[:0]
	if len(good) == 0 || len(bad) == 0 {
		return
	}
	s.mixedGroups++
	var sg, sb float64
	for _, g := range good {
		sg += g
		for _, b := range bad {
			switch {
			case g > b:
				s.sepWins++
			case g == b:
				s.sepWins += 0.5
			}
		}
	}
	for _, b := range bad {
		sb += b
	}
	s.sepPairs += int64(len(good) * len(bad))
	s.gapSum += sg/float64(len(good)) - sb/float64(len(bad))
}

func (s *sliceAcc) merge(o *sliceAcc) {
	s.rows += o.rows
	s.failed += o.failed
	s.explGroups += o.explGroups
	s.distinctCorrResp += o.distinctCorrResp
	s.distinctCorrAns += o.distinctCorrAns
	s.distAns += o.distAns
	s.mixedGroups += o.mixedGroups
	s.sepPairs += o.sepPairs
	s.sepWins += o.sepWins
	s.gapSum += o.gapSum
	s.groups += o.groups
	s.nullReward += o.nullReward
	addCounts(s.nullReasons, o.nullReasons)
	s.graded += o.graded
	s.correct += o.correct
	s.reward.merge(o.reward)
	s.adv.merge(o.adv)
	s.entropy.merge(o.entropy)
	s.lenDist.merge(o.lenDist)
	for name, oc := range o.comps {
		c := s.comps[name]
		if c == nil {
			s.comps[name] = oc
			continue
		}
		c.dist.merge(oc.dist)
		c.null += oc.null
		addCounts(c.reasons, oc.reasons)
		for w, n := range oc.weights {
			c.weights[w] += n
		}
	}
	s.zeroVar += o.zeroVar
	s.passGroups += o.passGroups
	s.pass += o.pass
	s.maj += o.maj
	s.majConsensus += o.majConsensus
	s.majTies += o.majTies
	s.majNoAnswer += o.majNoAnswer
	for k, n := range o.kCounts {
		s.kCounts[k] += n
	}
	addCounts(s.trans, o.trans)
	s.revisions += o.revisions
	s.changed += o.changed
	s.consGroups += o.consGroups
	s.consOK += o.consOK
	s.consRatio += o.consRatio
	s.consRatioN += o.consRatioN
	for i := range 2 {
		for j := range 2 {
			s.judge[i][j] += o.judge[i][j]
		}
	}
	s.flagKnown += o.flagKnown
	s.flagged += o.flagged
	s.lenTokens += o.lenTokens
	s.lenChars += o.lenChars
	s.lenCorr.merge(&o.lenCorr)
	for i := range s.lenBins {
		s.lenBins[i].n += o.lenBins[i].n
		s.lenBins[i].rewardN += o.lenBins[i].rewardN
		s.lenBins[i].rewardSum += o.lenBins[i].rewardSum
	}
	s.finishKnown += o.finishKnown
	s.truncated += o.truncated
	s.entropyRows += o.entropyRows
	s.entropyToks += o.entropyToks
}

func addCounts[K comparable](dst, src map[K]int64) {
	for k, n := range src {
		dst[k] += n
	}
}

// The report's metric groups, per slice.

// SliceReport holds every metric group of one slice.
type SliceReport struct {
	Dimension      string            `json:"dimension"`
	Key            string            `json:"key"`
	Rows           int64             `json:"rows"`
	Groups         int64             `json:"groups"`
	Reward         RewardReport      `json:"reward"`
	Components     []ComponentReport `json:"reward_components"`
	Advantage      AdvantageReport   `json:"advantage"`
	PassMaj        PassMajReport     `json:"pass_maj"`
	Transitions    TransitionReport  `json:"transitions"`
	AnswerChange   AnswerChange      `json:"answer_change"`
	Consensus      ConsensusReport   `json:"consensus"`
	JudgeAgreement JudgeAgreement    `json:"judge_agreement"`
	Length         LengthReport      `json:"length"`
	Entropy        EntropyReport     `json:"entropy"`
	JudgeFlagged   FlagReport        `json:"judge_flagged"`
	ExploreExploit ExploreExploit    `json:"explore_exploit"`
}

// ExploreExploit holds B-STaR's exploration and exploitation numbers. Over
// the groups with a graded sample (Groups; a slice's group is its rows of
// one (task, turn) group, k of them): the mean number of distinct correct
// responses (response texts), of distinct correct answers (extracted
// answers) and of distinct answers. Over the mixed groups (correct and
// incorrect samples with a reward): RewardAUROC, the fraction of (correct,
// incorrect) sample pairs of a group whose correct sample has the higher
// reward (a tie counts half), pooled over the groups' pairs, and RewardGap,
// the mean over groups of mean reward(correct) - mean reward(incorrect).
type ExploreExploit struct {
	Groups                   int64    `json:"groups"`
	DistinctCorrectResponses *float64 `json:"distinct_correct_responses_mean"`
	DistinctCorrectAnswers   *float64 `json:"distinct_correct_answers_mean"`
	DistinctAnswers          *float64 `json:"distinct_answers_mean"`
	MixedGroups              int64    `json:"mixed_groups"`
	Pairs                    int64    `json:"pairs"`
	RewardAUROC              *float64 `json:"reward_auroc"`
	RewardGap                *float64 `json:"reward_gap"`
}

// RewardReport is the total reward's distribution and the verifier's
// accuracy.
type RewardReport struct {
	Dist
	Null        int64            `json:"null"`
	NullRate    *float64         `json:"null_rate"`
	NullReasons map[string]int64 `json:"null_reasons"`
	// Failed counts rows whose sample has no response (error set).
	Failed     int64    `json:"failed"`
	FailedRate *float64 `json:"failed_rate"`
	Graded     int64    `json:"graded"`
	Correct    int64    `json:"correct"`
	Accuracy   *float64 `json:"accuracy"`
}

// ComponentReport is one reward component's distribution; null values are
// counted by reason.
type ComponentReport struct {
	Name        string           `json:"name"`
	Weights     []float64        `json:"weights"`
	Dist        Dist             `json:"dist"`
	Null        int64            `json:"null"`
	NullReasons map[string]int64 `json:"null_reasons"`
}

// AdvantageReport is the advantage distribution and the groups without
// signal.
type AdvantageReport struct {
	Dist
	ZeroVarianceGroups int64    `json:"zero_variance_groups"`
	FracZeroVariance   *float64 `json:"frac_zero_variance"`
}

// PassMajReport: per group (the slice's rows of one (task, turn) group),
// k = its size, pass@k = any correct, maj@k = the majority answer correct.
type PassMajReport struct {
	Groups int64 `json:"groups"`
	// K is the group size when every group has the same, else 0; KCounts
	// counts groups by size.
	K       int              `json:"k"`
	KCounts map[string]int64 `json:"k_counts"`
	PassAtK *float64         `json:"pass_at_k"`
	MajAtK  *float64         `json:"maj_at_k"`
	// MajFromConsensus counts groups decided by consensus_label_correct;
	// MajTies those whose top answers tied (the first stated wins);
	// MajNoAnswer those without any extracted answer (counted wrong).
	MajFromConsensus int64 `json:"maj_from_consensus_label"`
	MajTies          int64 `json:"maj_ties"`
	MajNoAnswer      int64 `json:"maj_no_answer"`
}

// TransitionReport is the correction transition matrix and SCoRe's deltas,
// as fractions of all revisions.
type TransitionReport struct {
	Revisions int64            `json:"revisions"`
	Counts    map[string]int64 `json:"counts"`
	// DeltaT1T2 = acc(t2) - acc(t1) over the revised episodes = frac(i->c)
	// - frac(c->i).
	DeltaT1T2 *float64 `json:"delta_t1_t2"`
	DeltaIC   *float64 `json:"delta_i_to_c"`
	DeltaCI   *float64 `json:"delta_c_to_i"`
}

// AnswerChange: turn >= 1 rows whose extracted answer differs from the
// previous turn's answer of the same (task, sample_index).
type AnswerChange struct {
	Revisions int64    `json:"revisions"`
	Changed   int64    `json:"changed"`
	Rate      *float64 `json:"rate"`
}

// ConsensusReport: per group with a consensus label.
type ConsensusReport struct {
	Groups            int64    `json:"groups"`
	LabelCorrect      int64    `json:"label_correct"`
	LabelAccuracy     *float64 `json:"label_accuracy"`
	MajorityRatioMean *float64 `json:"majority_ratio_mean"`
}

// JudgeAgreement is the confusion matrix of judge score >= 0.5 against the
// verifier's verdict.
type JudgeAgreement struct {
	Rows             int64    `json:"rows"`
	PassCorrect      int64    `json:"judge_pass_correct"`
	PassIncorrect    int64    `json:"judge_pass_incorrect"`
	FailCorrect      int64    `json:"judge_fail_correct"`
	FailIncorrect    int64    `json:"judge_fail_incorrect"`
	Agreement        *float64 `json:"agreement"`
	JudgePassRate    *float64 `json:"judge_pass_rate"`
	VerifierPassRate *float64 `json:"verifier_pass_rate"`
}

// LengthReport: reward against response length (completion_tokens, else
// response characters) and truncation.
type LengthReport struct {
	Unit              string      `json:"unit"`
	RowsTokens        int64       `json:"rows_completion_tokens"`
	RowsChars         int64       `json:"rows_response_chars"`
	Mean              *float64    `json:"mean"`
	Max               *float64    `json:"max"`
	RewardCorrelation *float64    `json:"reward_correlation"`
	Bins              []LengthBin `json:"bins"`
	FinishKnown       int64       `json:"finish_reason_known"`
	Truncated         int64       `json:"truncated"`
	TruncationRate    *float64    `json:"truncation_rate"`
}

// LengthBin is the mean reward of rows with length in [Lo, Hi) (Hi -1: no
// upper bound).
type LengthBin struct {
	Lo         int64    `json:"lo"`
	Hi         int64    `json:"hi"`
	Rows       int64    `json:"rows"`
	RewardMean *float64 `json:"reward_mean"`
}

// EntropyReport: per row, the mean negative log-probability per token.
type EntropyReport struct {
	Rows   int64 `json:"rows"`
	Tokens int64 `json:"tokens"`
	Dist   Dist  `json:"dist"`
}

// FlagReport counts rows flagged for addressing the judge.
type FlagReport struct {
	Known   int64    `json:"known"`
	Flagged int64    `json:"flagged"`
	Rate    *float64 `json:"rate"`
}

func (s *sliceAcc) report() SliceReport {
	r := SliceReport{Dimension: s.dim, Key: s.key, Rows: s.rows, Groups: s.groups}
	r.Reward = RewardReport{Dist: s.reward.summary(), Null: s.nullReward, NullRate: ratio(s.nullReward, s.rows), NullReasons: s.nullReasons,
		Failed: s.failed, FailedRate: ratio(s.failed, s.rows),
		Graded: s.graded, Correct: s.correct, Accuracy: ratio(s.correct, s.graded)}
	names := make([]string, 0, len(s.comps))
	for n := range s.comps {
		names = append(names, n)
	}
	sort.Strings(names)
	r.Components = []ComponentReport{}
	for _, n := range names {
		c := s.comps[n]
		cr := ComponentReport{Name: n, Dist: c.dist.summary(), Null: c.null, NullReasons: c.reasons}
		for w := range c.weights {
			cr.Weights = append(cr.Weights, w)
		}
		sort.Float64s(cr.Weights)
		r.Components = append(r.Components, cr)
	}
	r.Advantage = AdvantageReport{Dist: s.adv.summary(), ZeroVarianceGroups: s.zeroVar, FracZeroVariance: ratio(s.zeroVar, s.groups)}
	pm := PassMajReport{Groups: s.passGroups, KCounts: map[string]int64{}, PassAtK: ratio(s.pass, s.passGroups), MajAtK: ratio(s.maj, s.passGroups),
		MajFromConsensus: s.majConsensus, MajTies: s.majTies, MajNoAnswer: s.majNoAnswer}
	for k, n := range s.kCounts {
		pm.KCounts[strconv.Itoa(k)] = n
		pm.K = k
	}
	if len(s.kCounts) != 1 {
		pm.K = 0
	}
	r.PassMaj = pm
	var revs int64
	counts := map[string]int64{"c->c": 0, "c->i": 0, "i->c": 0, "i->i": 0}
	for t, n := range s.trans {
		counts[t] += n
		revs += n
	}
	tr := TransitionReport{Revisions: revs, Counts: counts, DeltaIC: ratio(counts["i->c"], revs), DeltaCI: ratio(counts["c->i"], revs)}
	if revs > 0 {
		tr.DeltaT1T2 = fp(*tr.DeltaIC - *tr.DeltaCI)
	}
	r.Transitions = tr
	r.AnswerChange = AnswerChange{Revisions: s.revisions, Changed: s.changed, Rate: ratio(s.changed, s.revisions)}
	r.Consensus = ConsensusReport{Groups: s.consGroups, LabelCorrect: s.consOK, LabelAccuracy: ratio(s.consOK, s.consGroups)}
	if s.consRatioN > 0 {
		r.Consensus.MajorityRatioMean = fp(s.consRatio / float64(s.consRatioN))
	}
	j := s.judge
	n := j[0][0] + j[0][1] + j[1][0] + j[1][1]
	r.JudgeAgreement = JudgeAgreement{Rows: n, PassCorrect: j[1][1], PassIncorrect: j[1][0], FailCorrect: j[0][1], FailIncorrect: j[0][0],
		Agreement: ratio(j[1][1]+j[0][0], n), JudgePassRate: ratio(j[1][1]+j[1][0], n), VerifierPassRate: ratio(j[1][1]+j[0][1], n)}
	lr := LengthReport{RowsTokens: s.lenTokens, RowsChars: s.lenChars, RewardCorrelation: s.lenCorr.corr(),
		FinishKnown: s.finishKnown, Truncated: s.truncated, TruncationRate: ratio(s.truncated, s.finishKnown), Bins: []LengthBin{}}
	switch {
	case s.lenChars == 0:
		lr.Unit = "completion_tokens"
	case s.lenTokens == 0:
		lr.Unit = "response_chars"
	default:
		lr.Unit = "mixed"
	}
	if s.lenDist.n > 0 {
		lr.Mean, lr.Max = fp(s.lenDist.mean), fp(s.lenDist.max)
	}
	for i, b := range s.lenBins {
		if b.n == 0 {
			continue
		}
		lo, hi := lengthBinEdges(i)
		lb := LengthBin{Lo: lo, Hi: hi, Rows: b.n}
		if b.rewardN > 0 {
			lb.RewardMean = fp(b.rewardSum / float64(b.rewardN))
		}
		lr.Bins = append(lr.Bins, lb)
	}
	r.Length = lr
	r.Entropy = EntropyReport{Rows: s.entropyRows, Tokens: s.entropyToks, Dist: s.entropy.summary()}
	r.JudgeFlagged = FlagReport{Known: s.flagKnown, Flagged: s.flagged, Rate: ratio(s.flagged, s.flagKnown)}
	ee := ExploreExploit{Groups: s.explGroups, MixedGroups: s.mixedGroups, Pairs: s.sepPairs}
	if s.explGroups > 0 {
		n := float64(s.explGroups)
		ee.DistinctCorrectResponses = fp(float64(s.distinctCorrResp) / n)
		ee.DistinctCorrectAnswers = fp(float64(s.distinctCorrAns) / n)
		ee.DistinctAnswers = fp(float64(s.distAns) / n)
	}
	if s.sepPairs > 0 {
		ee.RewardAUROC = fp(s.sepWins / float64(s.sepPairs))
		ee.RewardGap = fp(s.gapSum / float64(s.mixedGroups))
	}
	r.ExploreExploit = ee
	return r
}
