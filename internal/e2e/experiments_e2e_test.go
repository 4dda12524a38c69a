package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/experiment"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/workflows"
)

const e2eSplit = `
id: e2e-split
name: Subject line test
trigger: {type: api}
reentry: {policy: always}
goal: {event: purchase, window: 14d}
holdout: {share: 0.3}
steps:
  - id: pick
    split:
      experiment: subject
      variants:
        - {name: plain, weight: %d, next: email_plain}
        - {name: bold, weight: %d, next: email_bold}
  - {id: email_plain, send: {channel: email, email: {subject: "Hello", text: "Hi"}}, next: done}
  - {id: email_bold, send: {channel: email, email: {subject: "HELLO!", text: "Hi"}}}
  - {id: done, exit: {reason: completed}}
`

// A split and a holdout end to end: each contact takes the path of the
// variant its hash gives, recorded in PostgreSQL; held-out contacts walk the
// journey and send nothing, the ledger saying why; a new version with other
// weights moves no one; the reports count it all.
func TestEndToEnd_SplitAndHoldout(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	const journeyID = "e2e-split"
	s.call("POST", "/v1/journeys", fmt.Sprintf(e2eSplit, 1, 1), http.StatusCreated)

	type person struct {
		id, variant string
		held        bool
	}
	var people []person
	run := func(p person) {
		t.Helper()
		started := s.call("POST", "/v1/journeys/"+journeyID+"/enrollments", map[string]any{"contact_id": p.id}, http.StatusCreated)
		var res workflows.JourneyResult
		require.NoError(t, s.tc.GetWorkflow(ctx, started["workflow_id"].(string), "").Get(ctx, &res))
		require.Equal(t, model.RunCompleted, res.Status)
	}
	// Twelve contacts or more, until the holdout and both variants have
	// someone (contact ids are random, so the hash's groups are too).
	groups := map[string]int{}
	for i := 0; len(people) < 12 || len(groups) < 3; i++ {
		c := s.call("POST", "/v1/contacts", map[string]any{"email": fmt.Sprintf("split%d@example.com", i)}, http.StatusCreated)
		id := c["contact"].(map[string]any)["id"].(string)
		s.call("POST", "/v1/contacts/"+id+"/consent", map[string]any{"channel": "email", "status": "granted", "source": "form"}, http.StatusOK)
		variant, err := experiment.Assign(experiment.ExperimentSalt(journeyID, "subject"), id,
			[]experiment.Variant{{Name: "plain", Weight: 1}, {Name: "bold", Weight: 1}})
		require.NoError(t, err)
		p := person{id: id, variant: variant, held: experiment.Held(experiment.HoldoutSalt(journeyID), id, 0.3)}
		people = append(people, p)
		if p.held {
			groups[journey.GroupHoldout]++
		} else {
			groups[p.variant]++
		}
		run(p)
	}

	// SendGrid got one email per contact not held out, with its variant's subject.
	subjects := map[string]string{}
	for _, r := range s.sg.Requests() {
		subjects[r.Body.Personalizations[0].To[0].Email] = r.Body.Subject
	}
	held := 0
	for i, p := range people {
		a, err := s.store.AssignmentOf(ctx, journeyID, "subject", p.id)
		require.NoError(t, err)
		require.Equal(t, p.variant, a.Variant, "recorded as the hash gave it")
		step := "email_" + p.variant
		msgs, err := s.store.MessagesForContact(ctx, p.id, 10)
		require.NoError(t, err)
		require.Len(t, msgs, 1)
		require.Equal(t, step, msgs[0].StepID, "the variant's path")
		email := fmt.Sprintf("split%d@example.com", i)
		if p.held {
			held++
			require.Equal(t, model.MessageSkipped, msgs[0].Status)
			require.Equal(t, journey.GroupHoldout, msgs[0].StatusReason)
			require.NotContains(t, subjects, email)
			why := s.call("GET", "/v1/contacts/"+p.id+"/journeys/"+journeyID+"/steps/"+step+"/why", nil, http.StatusOK)
			require.Contains(t, why["summary"], "holdout")
			continue
		}
		require.Equal(t, map[string]string{"plain": "Hello", "bold": "HELLO!"}[p.variant], subjects[email])
	}
	require.Len(t, s.sg.Requests(), len(people)-held)

	// Version 2 sends nearly everyone to the other variant: the first
	// contact, entering again, keeps its recorded one.
	weights := [2]int{1, journey.MaxVariantWeight}
	if people[0].variant == "bold" {
		weights = [2]int{journey.MaxVariantWeight, 1}
	}
	s.call("POST", "/v1/journeys", fmt.Sprintf(e2eSplit, weights[0], weights[1]), http.StatusCreated)
	run(people[0])
	msgs, err := s.store.MessagesForContact(ctx, people[0].id, 10)
	require.NoError(t, err)
	require.Len(t, msgs, 2)
	require.Equal(t, 2, msgs[0].JourneyVersion)
	require.Equal(t, "email_"+people[0].variant, msgs[0].StepID)

	// One purchase; the reports count it.
	buyer := people[1]
	s.call("POST", "/v1/events", map[string]any{"event_id": "buy-1", "contact_id": buyer.id, "name": "purchase"}, http.StatusAccepted)
	raw := s.call("GET", "/v1/reports/journeys/"+journeyID+"/experiments/subject", nil, http.StatusOK)
	var rep api.ExperimentReport
	b, err := json.Marshal(raw)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rep))
	entered, converted := map[string]int64{}, map[string]int64{}
	for _, p := range people {
		g := p.variant
		if p.held {
			g = journey.GroupHoldout
		}
		entered[g]++
		if p.id == buyer.id {
			converted[g]++
		}
	}
	for _, g := range rep.Groups {
		require.Equal(t, entered[g.Group], g.Entered, g.Group)
		require.Equal(t, converted[g.Group], g.Converted, g.Group)
	}
	require.Equal(t, 2, rep.Version)

	funnel := s.call("GET", "/v1/reports/journeys/"+journeyID, nil, http.StatusOK)
	v1 := funnel["versions"].([]any)[1].(map[string]any)
	require.EqualValues(t, len(people), v1["entered"])
	require.EqualValues(t, 1, v1["converted"])
}
