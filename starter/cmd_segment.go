package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/segment"
)

// newSegmentValidateCmd is `tutti segment validate`: it checks a segment
// definition offline, with the code the API uses.
func (c *cli) newSegmentValidateCmd() *cobra.Command {
	return validateCmd(c, "segment definition", segment.Parse, func(seg *segment.Segment) string {
		return "segment " + seg.ID + timeNote(seg.TimeDependent)
	})
}

func timeNote(timeDependent bool) string {
	if timeDependent {
		return ", changes with time: swept"
	}
	return ""
}

// newSegmentDefineCmd is `tutti segment define`: PUT /v1/segments/{id}
// with the file's id.
func (c *cli) newSegmentDefineCmd() *cobra.Command {
	return c.leaf("define", "FILE",
		"Define a segment (YAML or JSON): its next version, or nothing if unchanged",
		1, func(ctx context.Context, inv *invocation) error {
			file := inv.args[0]
			data, ctype, err := readDocument(file)
			if err != nil {
				return err
			}
			// The id goes in the URL; a file that does not parse is sent as
			// is to the body's own id, so the API reports its problems.
			var d segment.Definition
			if seg, err := segment.Parse(data); err == nil {
				d = seg.Definition
			} else {
				var problems journey.Problems
				if errors.As(err, &problems) {
					for _, p := range problems {
						fmt.Fprintln(c.stderr, p.String())
					}
					fmt.Fprintf(c.stderr, "%s: %d problem(s); nothing was sent\n", file, len(problems))
					return errReported
				}
				return fmt.Errorf("%s: %w", file, err)
			}
			var out api.SegmentDefined
			if _, err := c.client().call(ctx, http.MethodPut, "/v1/segments/"+url.PathEscape(d.ID), nil, data, ctype, &out); err != nil {
				return err
			}
			if out.Created {
				fmt.Fprintf(c.stdout, "defined segment %s version %d%s\n", out.SegmentID, out.Version, timeNote(out.TimeDependent))
			} else {
				fmt.Fprintf(c.stdout, "segment %s unchanged (version %d)\n", out.SegmentID, out.Version)
			}
			return nil
		})
}

// newSegmentListCmd is `tutti segment list`.
func (c *cli) newSegmentListCmd() *cobra.Command {
	var asJSON bool
	cmd := c.leaf("list", "[--json]", "List segments with their member counts",
		0, func(ctx context.Context, inv *invocation) error {
			var out api.SegmentList
			raw, err := c.client().call(ctx, http.MethodGet, "/v1/segments", nil, nil, "", &out)
			if err != nil {
				return err
			}
			if asJSON {
				return c.printRaw(raw)
			}
			if len(out.Segments) == 0 {
				fmt.Fprintln(c.stdout, "no segment is defined")
				return nil
			}
			for _, s := range out.Segments {
				fmt.Fprintf(c.stdout, "%-24s v%-3d %8d members  %s%s\n", s.SegmentID, s.Version, s.Members, s.Definition.Name, timeNote(s.TimeDependent))
			}
			return nil
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON instead of a summary")
	return cmd
}

// newSegmentMembersCmd is `tutti segment members`: every current member,
// fetched a page at a time.
func (c *cli) newSegmentMembersCmd() *cobra.Command {
	var limit int
	cmd := c.leaf("members", "ID [--limit N]", "List a segment's members (contact id, entered at)",
		1, func(ctx context.Context, inv *invocation) error {
			if limit < 1 {
				return inv.usagef("--limit must be at least 1")
			}
			cl := c.client()
			after, shown := "", 0
			for shown < limit {
				q := url.Values{"limit": {fmt.Sprint(min(1000, limit-shown))}}
				if after != "" {
					q.Set("after", after)
				}
				var page api.SegmentMembers
				if _, err := cl.call(ctx, http.MethodGet, "/v1/segments/"+url.PathEscape(inv.args[0])+"/members", q, nil, "", &page); err != nil {
					return err
				}
				for _, m := range page.Members {
					fmt.Fprintf(c.stdout, "%s  since %s (v%d)\n", m.ContactID, m.EnteredAt.UTC().Format(time.DateTime), m.SegmentVersion)
				}
				shown += len(page.Members)
				if page.Next == "" {
					break
				}
				after = page.Next
			}
			if shown == 0 {
				fmt.Fprintln(c.stdout, "no members")
			}
			return nil
		})
	cmd.Flags().IntVar(&limit, "limit", 10000, "at most this many members")
	return cmd
}

// newContactSegmentsCmd is `tutti contact segments`: the contact's
// memberships with history, and why they are in or out now.
func (c *cli) newContactSegmentsCmd() *cobra.Command {
	var asJSON bool
	cmd := c.leaf("segments", "CONTACT [--json]",
		"Show a contact's segment memberships (with history) and which clauses hold now",
		1, func(ctx context.Context, inv *invocation) error {
			var out api.ContactSegments
			raw, err := c.client().call(ctx, http.MethodGet, "/v1/contacts/"+url.PathEscape(inv.args[0])+"/segments", nil, nil, "", &out)
			if err != nil {
				return err
			}
			if asJSON {
				return c.printRaw(raw)
			}
			for _, v := range out.Now {
				state := "out"
				if v.Member {
					state = "IN"
				}
				fmt.Fprintf(c.stdout, "%s (v%d): %s now\n", v.SegmentID, v.Version, state)
				for _, cl := range v.Clauses {
					mark := "no "
					if cl.Held {
						mark = "yes"
					}
					fmt.Fprintf(c.stdout, "  %s  %s\n", mark, cl.Expr)
					if cl.Error != "" {
						fmt.Fprintf(c.stdout, "       (%s)\n", cl.Error)
					}
				}
				for _, m := range out.Memberships {
					if m.SegmentID != v.SegmentID {
						continue
					}
					exited := "still in"
					if m.ExitedAt != nil {
						exited = "left " + m.ExitedAt.UTC().Format(time.DateTime)
					}
					fmt.Fprintf(c.stdout, "  entered %s (v%d), %s\n", m.EnteredAt.UTC().Format(time.DateTime), m.SegmentVersion, exited)
				}
			}
			if len(out.Now) == 0 {
				fmt.Fprintln(c.stdout, "no segment is defined")
			}
			return nil
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON instead of a summary")
	return cmd
}
