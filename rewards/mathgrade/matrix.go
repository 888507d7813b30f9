package mathgrade

// mval is a matrix of values; rows == 0 means a scalar in el[0].
type mval struct {
	rows, cols int
	el         []value
}

const maxMatrixCells = 400

func scalarM(v value) mval { return mval{el: []value{v}} }

// evalMatrix evaluates sums, differences, scalar multiples and products of
// matrices.
func (e *evalEnv) evalMatrix(n *node) (mval, error) {
	e.b.tick(1)
	e.depth++
	defer func() { e.depth-- }()
	if e.depth > maxEvalDepth {
		return mval{}, errUndefined
	}
	switch n.kind {
	case nMatrix:
		m := mval{rows: len(n.kids), cols: len(n.kids[0].kids)}
		if m.rows*m.cols > maxMatrixCells {
			return mval{}, errUndefined
		}
		for _, r := range n.kids {
			for _, x := range r.kids {
				v, err := e.eval(x)
				if err != nil {
					return mval{}, err
				}
				m.el = append(m.el, v)
			}
		}
		return m, nil
	case nAdd:
		acc, err := e.evalMatrix(n.kids[0])
		if err != nil {
			return mval{}, err
		}
		for _, k := range n.kids[1:] {
			m, err := e.evalMatrix(k)
			if err != nil {
				return mval{}, err
			}
			if acc.rows != m.rows || acc.cols != m.cols {
				return mval{}, errUndefined
			}
			out := mval{rows: acc.rows, cols: acc.cols, el: make([]value, len(acc.el))}
			for i := range acc.el {
				out.el[i] = vAdd(acc.el[i], m.el[i])
			}
			acc = out
		}
		return acc, nil
	case nNeg:
		m, err := e.evalMatrix(n.kids[0])
		if err != nil {
			return mval{}, err
		}
		out := mval{rows: m.rows, cols: m.cols, el: make([]value, len(m.el))}
		for i := range m.el {
			out.el[i] = vNeg(m.el[i])
		}
		return out, nil
	case nMul:
		acc, err := e.evalMatrix(n.kids[0])
		if err != nil {
			return mval{}, err
		}
		for _, k := range n.kids[1:] {
			m, err := e.evalMatrix(k)
			if err != nil {
				return mval{}, err
			}
			acc, err = matMul(acc, m)
			if err != nil {
				return mval{}, err
			}
		}
		return acc, nil
	}
	if hasMatrix(n) {
		return mval{}, errUndefined
	}
	v, err := e.eval(n)
	if err != nil {
		return mval{}, err
	}
	return scalarM(v), nil
}

func matMul(a, b mval) (mval, error) {
	switch {
	case a.rows == 0 && b.rows == 0:
		return scalarM(vMul(a.el[0], b.el[0])), nil
	case a.rows == 0 || b.rows == 0:
		s, m := a.el[0], b
		if b.rows == 0 {
			s, m = b.el[0], a
		}
		out := mval{rows: m.rows, cols: m.cols, el: make([]value, len(m.el))}
		for i := range m.el {
			out.el[i] = vMul(s, m.el[i])
		}
		return out, nil
	}
	if a.cols != b.rows || a.rows*b.cols > maxMatrixCells {
		return mval{}, errUndefined
	}
	out := mval{rows: a.rows, cols: b.cols, el: make([]value, a.rows*b.cols)}
	for i := 0; i < a.rows; i++ {
		for j := 0; j < b.cols; j++ {
			acc := intVal(0)
			for k := 0; k < a.cols; k++ {
				acc = vAdd(acc, vMul(a.el[i*a.cols+k], b.el[k*b.cols+j]))
			}
			out.el[i*b.cols+j] = acc
		}
	}
	return out, nil
}
