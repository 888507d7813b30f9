package mathgrade

import (
	"errors"
	"math"
	"math/big"
	"math/cmplx"
	"strings"
)

// value is a complex number, exact (Gaussian rational) when every step
// that produced it was exact, otherwise a complex128 approximation. c is
// always set.
type value struct {
	exact  bool
	re, im *big.Rat // when exact; im == nil means 0
	c      complex128
}

var (
	errUndefined = errors.New("undefined")
	errNotScalar = errors.New("not a scalar")
)

// Exact-arithmetic size limit: past it values fall back to float64.
const maxExactBits = 1 << 14

var ratZero = new(big.Rat)

func ratF(r *big.Rat) float64 {
	if r == nil {
		return 0
	}
	f, _ := r.Float64()
	return f
}

func exactVal(re, im *big.Rat) value {
	if im != nil && im.Sign() == 0 {
		im = nil
	}
	v := value{exact: true, re: re, im: im}
	if ratBits(re) > maxExactBits || ratBits(im) > maxExactBits {
		return floatVal(complex(ratF(re), ratF(im)))
	}
	v.c = complex(ratF(re), ratF(im))
	return v
}

func ratBits(r *big.Rat) int {
	if r == nil {
		return 0
	}
	return r.Num().BitLen() + r.Denom().BitLen()
}

func floatVal(c complex128) value { return value{c: c} }

func ratVal(r *big.Rat) value { return exactVal(r, nil) }

func intVal(n int64) value { return ratVal(new(big.Rat).SetInt64(n)) }

func (v value) imag() *big.Rat {
	if v.im == nil {
		return ratZero
	}
	return v.im
}

func (v value) isReal() bool {
	if v.exact {
		return v.im == nil || v.im.Sign() == 0
	}
	return math.Abs(imag(v.c)) <= 1e-12*math.Max(1, math.Abs(real(v.c)))
}

func (v value) finite() bool {
	return !cmplx.IsNaN(v.c) && !cmplx.IsInf(v.c)
}

func vAdd(a, b value) value {
	if a.exact && b.exact {
		return exactVal(new(big.Rat).Add(a.re, b.re), new(big.Rat).Add(a.imag(), b.imag()))
	}
	return floatVal(a.c + b.c)
}

func vNeg(a value) value {
	if a.exact {
		return exactVal(new(big.Rat).Neg(a.re), new(big.Rat).Neg(a.imag()))
	}
	return floatVal(-a.c)
}

func vMul(a, b value) value {
	if a.exact && b.exact {
		if a.im == nil && b.im == nil {
			return exactVal(new(big.Rat).Mul(a.re, b.re), nil)
		}
		ac := new(big.Rat).Mul(a.re, b.re)
		bd := new(big.Rat).Mul(a.imag(), b.imag())
		ad := new(big.Rat).Mul(a.re, b.imag())
		bc := new(big.Rat).Mul(a.imag(), b.re)
		return exactVal(ac.Sub(ac, bd), ad.Add(ad, bc))
	}
	return floatVal(a.c * b.c)
}

func (v value) isZero() bool {
	if v.exact {
		return v.re.Sign() == 0 && v.imag().Sign() == 0
	}
	return v.c == 0
}

func vDiv(a, b value) (value, error) {
	if b.isZero() {
		return value{}, errUndefined
	}
	if a.exact && b.exact {
		if a.im == nil && b.im == nil {
			return exactVal(new(big.Rat).Quo(a.re, b.re), nil), nil
		}
		// (a+bi)/(c+di) = (a+bi)(c-di)/(c²+d²)
		den := new(big.Rat).Mul(b.re, b.re)
		den.Add(den, new(big.Rat).Mul(b.imag(), b.imag()))
		conj := exactVal(b.re, new(big.Rat).Neg(b.imag()))
		num := vMul(a, conj)
		if !num.exact {
			return floatVal(a.c / b.c), nil
		}
		return exactVal(new(big.Rat).Quo(num.re, den), new(big.Rat).Quo(num.imag(), den)), nil
	}
	r := a.c / b.c
	if cmplx.IsNaN(r) || cmplx.IsInf(r) {
		return value{}, errUndefined
	}
	return floatVal(r), nil
}

// vPow computes a^b, exactly when a is exact and b is a small integer or a
// rational whose root of a is exact.
func vPow(a, b value) (value, error) {
	if a.exact && b.exact && b.im == nil {
		if b.re.IsInt() {
			n := b.re.Num()
			if n.IsInt64() && abs64(n.Int64()) <= 4096 {
				k := n.Int64()
				if est := (ratBits(a.re) + ratBits(a.im)) * int(abs64(k)); est <= maxExactBits*2 {
					return powInt(a, k)
				}
			}
		} else if a.im == nil {
			p, q := b.re.Num(), b.re.Denom()
			if q.IsInt64() && q.Int64() <= 64 && p.IsInt64() && abs64(p.Int64()) <= 4096 {
				qq := int(q.Int64())
				neg := a.re.Sign() < 0
				if !neg || qq%2 == 1 {
					x := new(big.Rat).Abs(a.re)
					if r, ok := ratRoot(x, qq); ok {
						if neg {
							r.Neg(r)
						}
						return powInt(ratVal(r), p.Int64())
					}
				} else if qq == 2 {
					x := new(big.Rat).Neg(a.re)
					if r, ok := ratRoot(x, 2); ok {
						return powInt(exactVal(new(big.Rat), r), p.Int64())
					}
				}
			}
		}
	}
	if a.isZero() {
		if real(b.c) > 0 {
			return intVal(0), nil
		}
		return value{}, errUndefined
	}
	// Real base and exponent: real powers, with odd roots of negatives real.
	if a.isReal() && b.isReal() {
		x, y := real(a.c), real(b.c)
		if x > 0 {
			return checked(complex(math.Pow(x, y), 0))
		}
		if b.exact && !b.re.IsInt() && b.re.Denom().Bit(0) == 1 {
			r := math.Pow(-x, y)
			if b.re.Num().Bit(0) == 1 {
				r = -r
			}
			return checked(complex(r, 0))
		}
	}
	return checked(cmplx.Pow(a.c, b.c))
}

func checked(c complex128) (value, error) {
	if cmplx.IsNaN(c) || cmplx.IsInf(c) {
		return value{}, errUndefined
	}
	return floatVal(c), nil
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func powInt(a value, k int64) (value, error) {
	if k < 0 {
		inv, err := vDiv(intVal(1), a)
		if err != nil {
			return value{}, err
		}
		return powInt(inv, -k)
	}
	res := intVal(1)
	base := a
	for k > 0 {
		if k&1 == 1 {
			res = vMul(res, base)
		}
		k >>= 1
		if k > 0 {
			base = vMul(base, base)
		}
	}
	return res, nil
}

// ratRoot returns the exact q-th root of x >= 0 when it is rational.
func ratRoot(x *big.Rat, q int) (*big.Rat, bool) {
	if q == 1 {
		return new(big.Rat).Set(x), true
	}
	n, ok1 := intRoot(x.Num(), q)
	d, ok2 := intRoot(x.Denom(), q)
	if !ok1 || !ok2 {
		return nil, false
	}
	return new(big.Rat).SetFrac(n, d), true
}

// intRoot returns the exact q-th root of n >= 0 when it is an integer.
func intRoot(n *big.Int, q int) (*big.Int, bool) {
	if n.Sign() == 0 {
		return new(big.Int), true
	}
	if n.BitLen() > 4096 {
		return nil, false
	}
	if q == 2 {
		r := new(big.Int).Sqrt(n)
		return r, new(big.Int).Mul(r, r).Cmp(n) == 0
	}
	f, _ := new(big.Float).SetInt(n).Float64()
	var guess *big.Int
	if !math.IsInf(f, 0) {
		g := math.Round(math.Pow(f, 1/float64(q)))
		guess, _ = big.NewFloat(g).Int(nil)
	} else {
		return nil, false
	}
	qq := big.NewInt(int64(q))
	for d := int64(-1); d <= 1; d++ {
		c := new(big.Int).Add(guess, big.NewInt(d))
		if c.Sign() < 0 {
			continue
		}
		if new(big.Int).Exp(c, qq, nil).Cmp(n) == 0 {
			return c, true
		}
	}
	return nil, false
}

// eqValues compares two values: exactly when both are exact, else with
// relative tolerance 1e-9. exact reports which test decided.
func eqValues(a, b value) (eq, exact bool) {
	if a.exact && b.exact {
		return a.re.Cmp(b.re) == 0 && a.imag().Cmp(b.imag()) == 0, true
	}
	if !a.finite() || !b.finite() {
		return false, false
	}
	d := cmplx.Abs(a.c - b.c)
	return d <= 1e-9*math.Max(cmplx.Abs(a.c), cmplx.Abs(b.c))+1e-12, false
}

// decimalComma reads "1,22" as 1.22 when both sides are plain digit runs.
func decimalComma(a, b *node) *node {
	if a.kind != nNum || b.kind != nNum || a.dec >= 0 || b.dec >= 0 || a.s == "" || b.s == "" {
		return nil
	}
	r, ok := new(big.Rat).SetString(a.s + "." + b.s)
	if !ok {
		return nil
	}
	return &node{kind: nNum, num: r, dec: len(b.s), s: a.s + "." + b.s}
}

func numNode(s string, p *parser) *node {
	if i := strings.IndexByte(s, '('); i > 0 && strings.HasSuffix(s, ")") {
		return repeatingNode(s[:i], s[i+1:len(s)-1], p)
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		p.fail()
	}
	dec := -1
	if i := strings.IndexByte(s, '.'); i >= 0 && !strings.ContainsAny(s, "eE") {
		dec = len(s) - i - 1
	}
	n := &node{kind: nNum, num: r, dec: dec}
	if !strings.ContainsAny(s, "eE") {
		n.s = s // the literal, for digit-level rules (bases, decimal commas, rounding)
	}
	return n
}

// repeatingNode is the exact value of a decimal whose digits rep repeat
// forever after head ("0.1" and "6" for 0.1666...).
func repeatingNode(head, rep string, p *parser) *node {
	if len(rep) > 64 || len(head) > 64 {
		p.fail()
	}
	base, ok := new(big.Rat).SetString(strings.TrimSuffix(head, "."))
	if !ok {
		p.fail()
	}
	places := 0
	if i := strings.IndexByte(head, '.'); i >= 0 {
		places = len(head) - i - 1
	}
	digits, ok := new(big.Int).SetString(rep, 10)
	if !ok {
		p.fail()
	}
	// rep / (10^places * (10^len(rep) - 1))
	ten := big.NewInt(10)
	den := new(big.Int).Exp(ten, big.NewInt(int64(len(rep))), nil)
	den.Sub(den, big.NewInt(1))
	den.Mul(den, new(big.Int).Exp(ten, big.NewInt(int64(places)), nil))
	v := new(big.Rat).SetFrac(digits, den)
	return &node{kind: nNum, num: v.Add(v, base), dec: -1}
}
