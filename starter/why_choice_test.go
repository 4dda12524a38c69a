package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/storage"
)

// tutti why prints what a choosing step chose, with its evidence.
func TestPrintWhyShowsTheChoice(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	printWhy(&b, api.WhyAnswer{ContactID: "c1", JourneyID: "j", StepID: "s", State: api.WhyPending, Summary: "not sent yet",
		Choices: []storage.SendChoice{{ChosenAt: at}}, Choice: "send time 2026-03-03T09:00:00Z (Tue 10:00 Europe/Paris)"})
	want := "chosen 2026-03-02 09:00:00 UTC: send time 2026-03-03T09:00:00Z (Tue 10:00 Europe/Paris)\n"
	if !strings.Contains(b.String(), want) {
		t.Errorf("want %q in:\n%s", want, b.String())
	}
}
