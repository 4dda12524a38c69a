package journey

// The step graph. The workflow interpreter moves a cursor through it with
// StepIndex, Successor and Resolve; validation uses the same edges, so what
// validation proves (every reference exists, no loop without a wait) holds for
// the path the interpreter really takes. A step id of "" means the journey ends.

// StepIndex returns the index of the step with the given id, or -1. With
// duplicate ids (which Validate rejects) the first one wins.
func (s Spec) StepIndex(id string) int {
	for i, st := range s.Steps {
		if st.ID == id {
			return i
		}
	}
	return -1
}

// Successor is where steps[i] goes when it does not choose: its Next if set,
// else the following step in the list, else "" (the journey ends).
func (s Spec) Successor(i int) string {
	if i < 0 || i >= len(s.Steps) {
		return ""
	}
	if next := s.Steps[i].Next; next != "" {
		return next
	}
	if i+1 < len(s.Steps) {
		return s.Steps[i+1].ID
	}
	return ""
}

// Resolve returns target when steps[i] names one (wait_for on_event/on_timeout,
// branch then/else), and otherwise falls through to Successor(i).
func (s Spec) Resolve(i int, target string) string {
	if target != "" {
		return target
	}
	return s.Successor(i)
}

// SplitFor returns the split step of the named experiment, if the spec
// has one.
func (s Spec) SplitFor(experiment string) (Step, bool) {
	for _, st := range s.Steps {
		if st.Split != nil && st.Split.Experiment == experiment {
			return st, true
		}
	}
	return Step{}, false
}

// Channels lists the distinct channels of the journey's send steps, in the
// order they first appear.
func (s Spec) Channels() []Channel {
	var out []Channel
	seen := map[Channel]bool{}
	for _, st := range s.Steps {
		if st.Send == nil {
			continue
		}
		for _, ch := range st.Send.Candidates() {
			if !seen[ch] {
				seen[ch] = true
				out = append(out, ch)
			}
		}
	}
	if s.Policy != nil && s.Policy.FallbackChannel != "" && len(out) > 0 && !seen[s.Policy.FallbackChannel] {
		out = append(out, s.Policy.FallbackChannel)
	}
	return out
}

// edge is one way out of a step. Field is the step field that names the
// target ("next", "branch.then"...), or "" for a fall-through to the next
// step in the list.
type edge struct {
	to    int
	field string
}

// edges lists the ways out of steps[i] that lead to an existing step, exactly
// as the interpreter resolves them. Unknown targets are left out: they are
// reported on their own and must not also make other steps look unreachable.
// A step with no action, or several, gets the union of the edges any of its
// actions would have, again to keep follow-on reports to the real mistakes.
func (s Spec) edges(i int) []edge {
	st := s.Steps[i]
	var out []edge
	add := func(field, target string) {
		if target != "" {
			if to := s.StepIndex(target); to >= 0 {
				out = append(out, edge{to: to, field: field})
			}
			return
		}
		// Resolve(i, "") is the successor: explicit next, or fall-through.
		if st.Next != "" {
			if to := s.StepIndex(st.Next); to >= 0 {
				out = append(out, edge{to: to, field: "next"})
			}
			return
		}
		if i+1 < len(s.Steps) {
			out = append(out, edge{to: i + 1})
		}
	}
	switch st.Kind() {
	case KindExit:
		return nil
	case KindSend, KindWait, KindWaitUntil, KindWebhook, KindAudience:
		add("next", st.Next)
	case KindWaitFor:
		add("wait_for.on_event", st.WaitFor.OnEvent)
		add("wait_for.on_timeout", st.WaitFor.OnTimeout)
	case KindBranch:
		add("branch.then", st.Branch.Then)
		add("branch.else", st.Branch.Else)
	case KindSplit:
		splitEdges(s, st.Split, &out)
	default:
		add("next", st.Next)
		if st.WaitFor != nil {
			add("wait_for.on_event", st.WaitFor.OnEvent)
			add("wait_for.on_timeout", st.WaitFor.OnTimeout)
		}
		if st.Branch != nil {
			add("branch.then", st.Branch.Then)
			add("branch.else", st.Branch.Else)
		}
		if st.Split != nil {
			splitEdges(s, st.Split, &out)
		}
	}
	return out
}

// splitEdges adds a split's ways out: each variant's next. A variant
// always names its step (validation requires it), so there is no
// fall-through.
func splitEdges(s Spec, sp *Split, out *[]edge) {
	for i, v := range sp.Variants {
		if to := s.StepIndex(v.Next); v.Next != "" && to >= 0 {
			*out = append(*out, edge{to: to, field: indexPath("split.variants", i) + ".next"})
		}
	}
}

// reachable marks the steps a run can reach from steps[0].
func (s Spec) reachable() []bool {
	seen := make([]bool, len(s.Steps))
	if len(s.Steps) == 0 {
		return seen
	}
	stack := []int{0}
	seen[0] = true
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, e := range s.edges(i) {
			if !seen[e.to] {
				seen[e.to] = true
				stack = append(stack, e.to)
			}
		}
	}
	return seen
}

// loopEdge is an edge that closes a cycle with no wait or wait_for on it.
type loopEdge struct {
	from int
	edge
}

// loopsWithoutWait finds every edge that lies on a cycle made only of steps
// that do not wait. Such a cycle would spin without ever giving the workflow
// a timer, sending (or branching) as fast as the worker can run.
//
// It computes the strongly connected components of the graph restricted to
// non-waiting steps: every edge inside such a component lies on a wait-free
// cycle. Of those it reports the backward ones (target at or before the
// source in the list), which is where a reader of the spec sees the loop
// close; every cycle has at least one, and fall-throughs never are.
func (s Spec) loopsWithoutWait() []loopEdge {
	n := len(s.Steps)
	waits := func(i int) bool {
		return s.Steps[i].Wait != nil || s.Steps[i].WaitUntil != nil || s.Steps[i].WaitFor != nil
	}
	adj := make([][]edge, n)
	for i := range n {
		if waits(i) {
			continue
		}
		for _, e := range s.edges(i) {
			if !waits(e.to) {
				adj[i] = append(adj[i], e)
			}
		}
	}
	comp := stronglyConnected(n, adj)
	var out []loopEdge
	for i := range n {
		for _, e := range adj[i] {
			if comp[e.to] == comp[i] && e.to <= i {
				out = append(out, loopEdge{from: i, edge: e})
			}
		}
	}
	return out
}

// stronglyConnected labels each node with its component (Tarjan's algorithm,
// iterative so a long journey cannot exhaust the stack).
func stronglyConnected(n int, adj [][]edge) []int {
	const unvisited = -1
	index := make([]int, n)
	low := make([]int, n)
	comp := make([]int, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i], comp[i] = unvisited, unvisited
	}
	var stack []int
	next, comps := 0, 0

	type frame struct{ node, edge int }
	for root := range n {
		if index[root] != unvisited {
			continue
		}
		call := []frame{{node: root}}
		index[root], low[root] = next, next
		next++
		stack = append(stack, root)
		onStack[root] = true
		for len(call) > 0 {
			f := &call[len(call)-1]
			v := f.node
			if f.edge < len(adj[v]) {
				w := adj[v][f.edge].to
				f.edge++
				if index[w] == unvisited {
					index[w], low[w] = next, next
					next++
					stack = append(stack, w)
					onStack[w] = true
					call = append(call, frame{node: w})
				} else if onStack[w] {
					low[v] = min(low[v], index[w])
				}
				continue
			}
			call = call[:len(call)-1]
			if len(call) > 0 {
				parent := call[len(call)-1].node
				low[parent] = min(low[parent], low[v])
			}
			if low[v] == index[v] {
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[w] = false
					comp[w] = comps
					if w == v {
						break
					}
				}
				comps++
			}
		}
	}
	return comp
}
