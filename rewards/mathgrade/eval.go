package mathgrade

import (
	"hash/fnv"
	"math"
	"math/big"
	"math/cmplx"
	"strconv"
)

// Evaluation points. Variables get small integers at the first points
// (sums need integer bounds) and non-integer rationals at the others, from
// a fixed hash, so grading is deterministic.
const (
	numPoints     = 5
	intPoints     = 3
	maxSumTerms   = 2000
	maxEvalDepth  = 200
	maxFactorial  = 1000
	pointSeedSalt = "redraft-mathgrade-v1"
)

type evalEnv struct {
	point int
	bound map[string]value
	b     *budget
	depth int
}

func hash64(parts ...string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(pointSeedSalt))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return h.Sum64()
}

// varValue is the value of a free variable at a point.
func varValue(name string, point int) value {
	h := hash64("var", name, strconv.Itoa(point))
	if point < intPoints {
		return intVal(int64(2 + h%97))
	}
	num := int64(3 + h%150)
	den := int64(2 + (h>>20)%9)
	return ratVal(big.NewRat(num, den))
}

// opaqueValue is the value of an uninterpreted function at arguments: a
// deterministic pseudo-random rational, equal for equal arguments.
func opaqueValue(name string, args []value) value {
	parts := []string{"fn", name}
	for _, a := range args {
		parts = append(parts, valueKey(a))
	}
	h := hash64(parts...)
	return ratVal(big.NewRat(int64(1+h%1009), int64(1+(h>>24)%13)))
}

func valueKey(v value) string {
	if v.exact {
		return v.re.RatString() + "+" + v.imag().RatString() + "i"
	}
	return strconv.FormatFloat(real(v.c), 'g', 9, 64) + "+" + strconv.FormatFloat(imag(v.c), 'g', 9, 64) + "i"
}

func (e *evalEnv) eval(n *node) (value, error) {
	e.b.tick(1)
	e.depth++
	defer func() { e.depth-- }()
	if e.depth > maxEvalDepth {
		return value{}, errUndefined
	}
	switch n.kind {
	case nNum:
		return ratVal(n.num), nil
	case nBase:
		z, ok := new(big.Int).SetString(n.s, int(n.num.Num().Int64()))
		if !ok {
			return value{}, errUndefined
		}
		return ratVal(new(big.Rat).SetInt(z)), nil
	case nSym:
		if v, ok := e.bound[n.s]; ok {
			return v, nil
		}
		switch n.s {
		case "pi":
			return floatVal(complex(math.Pi, 0)), nil
		case "e":
			return floatVal(complex(math.E, 0)), nil
		case "i":
			return exactVal(new(big.Rat), big.NewRat(1, 1)), nil
		}
		return varValue(n.s, e.point), nil
	case nAdd:
		acc := intVal(0)
		for _, k := range n.kids {
			v, err := e.eval(k)
			if err != nil {
				return value{}, err
			}
			acc = vAdd(acc, v)
		}
		return acc, nil
	case nMul:
		acc := intVal(1)
		for _, k := range n.kids {
			v, err := e.eval(k)
			if err != nil {
				return value{}, err
			}
			acc = vMul(acc, v)
		}
		return acc, nil
	case nNeg:
		v, err := e.eval(n.kids[0])
		if err != nil {
			return value{}, err
		}
		return vNeg(v), nil
	case nDiv:
		a, err := e.eval(n.kids[0])
		if err != nil {
			return value{}, err
		}
		b, err := e.eval(n.kids[1])
		if err != nil {
			return value{}, err
		}
		return vDiv(a, b)
	case nPow:
		a, err := e.eval(n.kids[0])
		if err != nil {
			return value{}, err
		}
		b, err := e.eval(n.kids[1])
		if err != nil {
			return value{}, err
		}
		return vPow(a, b)
	case nPct:
		v, err := e.eval(n.kids[0])
		if err != nil {
			return value{}, err
		}
		return vDiv(v, intVal(100))
	case nFunc:
		return e.evalFunc(n)
	case nSum:
		return e.evalSum(n)
	}
	return value{}, errNotScalar
}

func (e *evalEnv) evalSum(n *node) (value, error) {
	lo, err := e.eval(n.kids[0])
	if err != nil {
		return value{}, err
	}
	hi, err := e.eval(n.kids[1])
	if err != nil {
		return value{}, err
	}
	if !lo.exact || !hi.exact || lo.im != nil || hi.im != nil || !lo.re.IsInt() || !hi.re.IsInt() {
		return value{}, errUndefined
	}
	a, b := lo.re.Num(), hi.re.Num()
	if !a.IsInt64() || !b.IsInt64() || b.Int64()-a.Int64() > maxSumTerms {
		return value{}, errUndefined
	}
	acc := intVal(0)
	if n.s == "prod" {
		acc = intVal(1)
	}
	saved := e.bound
	e.bound = make(map[string]value, len(saved)+1)
	for k, v := range saved {
		e.bound[k] = v
	}
	defer func() { e.bound = saved }()
	for k := a.Int64(); k <= b.Int64(); k++ {
		e.bound[n.ops[0]] = intVal(k)
		v, err := e.eval(n.kids[2])
		if err != nil {
			return value{}, err
		}
		if n.s == "prod" {
			acc = vMul(acc, v)
		} else {
			acc = vAdd(acc, v)
		}
	}
	return acc, nil
}

func (e *evalEnv) evalFunc(n *node) (value, error) {
	args := make([]value, len(n.kids))
	for i, k := range n.kids {
		v, err := e.eval(k)
		if err != nil {
			return value{}, err
		}
		args[i] = v
	}
	if len(args) == 0 {
		return value{}, errUndefined
	}
	x := args[0]
	switch n.s {
	case "sqrt":
		return vPow(x, ratVal(big.NewRat(1, 2)))
	case "root":
		if len(args) != 2 {
			return value{}, errUndefined
		}
		inv, err := vDiv(intVal(1), args[1])
		if err != nil {
			return value{}, err
		}
		return vPow(x, inv)
	case "abs":
		if x.exact && x.im == nil {
			return ratVal(new(big.Rat).Abs(x.re)), nil
		}
		if x.exact {
			sq := vAdd(vMul(ratVal(x.re), ratVal(x.re)), vMul(ratVal(x.imag()), ratVal(x.imag())))
			return vPow(sq, ratVal(big.NewRat(1, 2)))
		}
		return floatVal(complex(cmplx.Abs(x.c), 0)), nil
	case "factorial":
		if !x.exact || x.im != nil || !x.re.IsInt() || x.re.Sign() < 0 || x.re.Num().Cmp(big.NewInt(maxFactorial)) > 0 {
			return value{}, errUndefined
		}
		r := new(big.Int).MulRange(1, x.re.Num().Int64())
		return ratVal(new(big.Rat).SetInt(r)), nil
	case "binom":
		if len(args) != 2 {
			return value{}, errUndefined
		}
		k := args[1]
		if !x.exact || !k.exact || x.im != nil || k.im != nil || !x.re.IsInt() || !k.re.IsInt() ||
			!x.re.Num().IsInt64() || !k.re.Num().IsInt64() || x.re.Num().Int64() > 100000 || x.re.Sign() < 0 {
			return value{}, errUndefined
		}
		nn, kk := x.re.Num().Int64(), k.re.Num().Int64()
		if kk < 0 || kk > nn {
			return intVal(0), nil
		}
		return ratVal(new(big.Rat).SetInt(new(big.Int).Binomial(nn, kk))), nil
	case "floor", "ceil":
		if x.exact && x.im == nil {
			q := new(big.Int).Div(x.re.Num(), x.re.Denom()) // Euclidean: floor for positive denominators
			if n.s == "ceil" && !x.re.IsInt() {
				q.Add(q, big.NewInt(1))
			}
			return ratVal(new(big.Rat).SetInt(q)), nil
		}
		if !x.isReal() {
			return value{}, errUndefined
		}
		if n.s == "floor" {
			return floatVal(complex(math.Floor(real(x.c)), 0)), nil
		}
		return floatVal(complex(math.Ceil(real(x.c)), 0)), nil
	case "gcd", "lcm":
		return intFold(n.s, args)
	case "max", "min":
		best := args[0]
		for _, a := range args[1:] {
			if !a.isReal() || !best.isReal() {
				return value{}, errUndefined
			}
			if (n.s == "max") == (real(a.c) > real(best.c)) {
				best = a
			}
		}
		return best, nil
	case "logb":
		if len(args) != 2 {
			return value{}, errUndefined
		}
		return logBase(x, args[1])
	}
	if isUninterpreted(n.s) || len(n.s) > 1 && n.s[0] == '_' {
		return opaqueValue(n.s, args), nil
	}
	return elementary(n.s, x)
}

func intFold(name string, args []value) (value, error) {
	var acc *big.Int
	for _, a := range args {
		if !a.exact || a.im != nil || !a.re.IsInt() {
			return value{}, errUndefined
		}
		z := new(big.Int).Abs(a.re.Num())
		if acc == nil {
			acc = z
			continue
		}
		g := new(big.Int).GCD(nil, nil, acc, z)
		if name == "gcd" {
			acc = g
		} else if g.Sign() != 0 {
			acc = new(big.Int).Mul(acc, new(big.Int).Quo(z, g))
		}
	}
	return ratVal(new(big.Rat).SetInt(acc)), nil
}

// logBase computes log_b(x), exactly when x is an exact integer power of b.
func logBase(x, b value) (value, error) {
	lx, err := elementary("ln", x)
	if err != nil {
		return value{}, err
	}
	lb, err := elementary("ln", b)
	if err != nil {
		return value{}, err
	}
	r, err := vDiv(lx, lb)
	if err != nil {
		return value{}, err
	}
	if x.exact && b.exact && x.im == nil && b.im == nil && r.isReal() {
		k := math.Round(real(r.c))
		if math.Abs(real(r.c)-k) < 1e-9 && math.Abs(k) <= 4096 {
			if p, err := powInt(b, int64(k)); err == nil && p.exact {
				if eq, _ := eqValues(p, x); eq {
					return intVal(int64(k)), nil
				}
			}
		}
	}
	return r, nil
}

// elementary evaluates the transcendental functions in float64 (complex
// where the real function is undefined), with exact values at the obvious
// points.
func elementary(name string, x value) (value, error) {
	if x.exact && x.im == nil {
		switch {
		case x.re.Sign() == 0 && (name == "sin" || name == "tan" || name == "arcsin" || name == "arctan" || name == "sinh" || name == "tanh"):
			return intVal(0), nil
		case x.re.Sign() == 0 && (name == "cos" || name == "cosh" || name == "exp" || name == "sec"):
			return intVal(1), nil
		case x.re.Cmp(big.NewRat(1, 1)) == 0 && (name == "ln" || name == "log" || name == "lg"):
			return intVal(0), nil
		}
	}
	if (name == "log" || name == "lg") && x.exact && x.im == nil {
		return logBase(x, intVal(10))
	}
	z := x.c
	real1 := x.isReal()
	r := real(z)
	var out complex128
	switch name {
	case "sin":
		out = cmplx.Sin(z)
		if real1 {
			out = complex(math.Sin(r), 0)
		}
	case "cos":
		out = cmplx.Cos(z)
		if real1 {
			out = complex(math.Cos(r), 0)
		}
	case "tan":
		out = cmplx.Tan(z)
		if real1 {
			out = complex(math.Tan(r), 0)
		}
	case "sec":
		out = 1 / cmplx.Cos(z)
	case "csc":
		out = 1 / cmplx.Sin(z)
	case "cot":
		out = 1 / cmplx.Tan(z)
	case "arcsin":
		out = cmplx.Asin(z)
		if real1 && r >= -1 && r <= 1 {
			out = complex(math.Asin(r), 0)
		}
	case "arccos":
		out = cmplx.Acos(z)
		if real1 && r >= -1 && r <= 1 {
			out = complex(math.Acos(r), 0)
		}
	case "arctan":
		out = cmplx.Atan(z)
		if real1 {
			out = complex(math.Atan(r), 0)
		}
	case "sinh":
		out = cmplx.Sinh(z)
	case "cosh":
		out = cmplx.Cosh(z)
	case "tanh":
		out = cmplx.Tanh(z)
	case "exp":
		out = cmplx.Exp(z)
		if real1 {
			out = complex(math.Exp(r), 0)
		}
	case "ln":
		if x.isZero() {
			return value{}, errUndefined
		}
		out = cmplx.Log(z)
		if real1 && r > 0 {
			out = complex(math.Log(r), 0)
		}
	case "log", "lg":
		if x.isZero() {
			return value{}, errUndefined
		}
		out = cmplx.Log10(z)
	default:
		return value{}, errUndefined
	}
	return checked(out)
}

// freeVars collects the names of free variables in n.
func freeVars(n *node, bound map[string]bool, out map[string]bool) {
	if n == nil {
		return
	}
	switch n.kind {
	case nSym:
		switch n.s {
		case "pi", "e", "i":
			return
		}
		if !bound[n.s] {
			out[n.s] = true
		}
		return
	case nSum:
		freeVars(n.kids[0], bound, out)
		freeVars(n.kids[1], bound, out)
		nb := map[string]bool{n.ops[0]: true}
		for k := range bound {
			nb[k] = true
		}
		freeVars(n.kids[2], nb, out)
		return
	}
	for _, k := range n.kids {
		freeVars(k, bound, out)
	}
	if n.alt != nil {
		freeVars(n.alt, bound, out)
	}
}

func hasFreeVars(n *node) bool {
	m := map[string]bool{}
	freeVars(n, nil, m)
	return len(m) > 0
}
