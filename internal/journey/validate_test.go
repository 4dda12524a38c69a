package journey

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// header is a valid journey head; cases replace it when testing its fields.
const header = `
id: j
name: J
trigger: {type: api}
reentry: {policy: once}
`

// okSteps is a valid step list for cases about the head.
const okSteps = `
steps:
  - {id: a, wait: {duration: 1h}}
`

func validateYAML(t *testing.T, doc string) Problems {
	t.Helper()
	s, err := Parse([]byte(doc))
	require.NoError(t, err)
	return Validate(s)
}

func TestValidate_ValidSpecs(t *testing.T) {
	docs := map[string]string{
		"minimal": header + okSteps,
		"everything": `
id: every-thing_2
name: Everything
description: uses every field
trigger: {type: event, event: signup.completed, key: signup_id}
reentry: {policy: cooldown, cooldown: 7d}
goal: {event: purchase}
exit_events: [unsubscribed, account.deleted]
class: transactional
steps:
  - id: inline
    send:
      channel: email
      class: marketing
      email:
        subject: 'Hi {{ .contact.first_name | default "there" }}'
        html: '<p>{{ if .contact.vip }}VIP {{ end }}{{ .contact.first_name | default "there" | capitalize }}</p>'
        text: '{{ with .contact.address }}{{ .city }}{{ end }} {{ $.journey.version }}'
  - id: dynamic
    send:
      channel: email
      email:
        template_id: d-123
        data: {name: '{{ .contact.first_name }}', nested: {list: ['{{ .journey.id }}', 3, null]}, "odd key": x}
  - id: text
    send:
      channel: sms
      sms: {body: '{{ .contact.first_name | upper }}', media_url: ['https://cdn.example.com/a.png']}
  - id: pause
    wait: {duration: 1d}
  - id: morning
    wait_until: {time: "09:30", days: [mon, tue, wed, thu, fri]}
  - id: any_day
    wait_until: {time: 18:00}
  - id: ask
    wait_for: {event: email.opened, timeout: 2d, on_event: done, on_timeout: check}
  - id: check
    branch: {condition: 'journey.events["email.opened"] == 0 && consent.sms == "granted"', then: text_again}
  - id: loop_back
    branch: {condition: 'contact.vip', then: pause, else: done}
  - id: text_again
    send: {channel: sms, sms: {body: again}}
  - id: alert
    webhook: {destination: sales-alerts, payload: {contact_id: '{{ .contact.id }}', email: '{{ .contact.email }}', score: 3, tags: [hot, '{{ .journey.id }}']}}
  - id: done
    exit: {reason: completed}
`,
		"defined templates see the dot they are given": header + `
steps:
  - id: a
    send:
      channel: sms
      sms: {body: '{{ define "greet" }}Hi {{ .first_name }}{{ end }}{{ template "greet" .contact }}'}
`,
		"an unconditional loop with a wait": header + `
steps:
  - {id: nag, send: {channel: sms, sms: {body: hi}}}
  - {id: pause, wait: {duration: 7d}, next: nag}
`,
	}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			require.Nil(t, validateYAML(t, doc))
		})
	}
}

// TestValidate_Problems has one bad spec per class of problem.
func TestValidate_Problems(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // "path: message"
	}{
		// The journey head.
		{"id required", `{name: J, trigger: {type: api}, reentry: {policy: once}, steps: [{id: a, wait: {duration: 1h}}]}`,
			[]string{"id: required"}},
		{"id pattern", strings.Replace(header, "id: j", "id: Welcome Series", 1) + okSteps,
			[]string{`id: must be 1-64 characters of a-z, 0-9, "_" and "-", starting with a letter or digit (got "Welcome Series")`}},
		{"id too long", strings.Replace(header, "id: j", "id: "+strings.Repeat("a", 65), 1) + okSteps,
			[]string{`id: must be 1-64 characters of a-z, 0-9, "_" and "-", starting with a letter or digit (got "` + strings.Repeat("a", 65) + `")`}},
		{"name required", strings.Replace(header, "name: J", "name: '  '", 1) + okSteps,
			[]string{"name: required"}},
		{"trigger type required", strings.Replace(header, "trigger: {type: api}", "trigger: {}", 1) + okSteps,
			[]string{"trigger.type: required (api, event or segment)"}},
		{"trigger type unknown", strings.Replace(header, "type: api", "type: cron", 1) + okSteps,
			[]string{`trigger.type: must be api, event or segment (got "cron")`}},
		{"trigger event required", strings.Replace(header, "type: api", "type: event", 1) + okSteps,
			[]string{"trigger.event: required when trigger.type is event"}},
		{"trigger event with api", strings.Replace(header, "type: api", "type: api, event: signup", 1) + okSteps,
			[]string{"trigger.event: must be empty when trigger.type is api"}},
		{"segment trigger needs its segment", strings.Replace(header, "type: api", "type: segment", 1) + okSteps,
			[]string{"trigger.segment: required: a segment id"}},
		{"segment trigger with a bad id", strings.Replace(header, "type: api", "type: segment, segment: Hot-Leads", 1) + okSteps,
			[]string{`trigger.segment: lowercase letters, digits and _, starting with a letter, at most 63 (got "Hot-Leads")`}},
		{"segment on an api trigger", strings.Replace(header, "type: api", "type: api, segment: hot_leads", 1) + okSteps,
			[]string{"trigger.segment: must be empty unless trigger.type is segment"}},
		{"exit_when_leaving with a bad id", strings.Replace(header, "trigger: {type: api}", "trigger: {type: api}\nexit_when_leaving: 9lives", 1) + okSteps,
			[]string{`exit_when_leaving: lowercase letters, digits and _, starting with a letter, at most 63 (got "9lives")`}},
		{"trigger key with api", strings.Replace(header, "type: api", "type: api, key: cart_id", 1) + okSteps,
			[]string{"trigger.key: only with trigger.type event: a journey runs once per value of a property of its triggering event"}},
		{"trigger key not a property name", strings.Replace(header, "type: api", "type: event, event: cart.abandoned, key: cart.id", 1) + okSteps,
			[]string{`trigger.key: must be the name of a property of the triggering event: 1-64 characters of A-Z, a-z, 0-9 and "_", not starting with a digit (got "cart.id")`}},
		{"trigger key starting with a digit", strings.Replace(header, "type: api", "type: event, event: cart.abandoned, key: 1cart", 1) + okSteps,
			[]string{`trigger.key: must be the name of a property of the triggering event: 1-64 characters of A-Z, a-z, 0-9 and "_", not starting with a digit (got "1cart")`}},
		{"reentry policy required", strings.Replace(header, "reentry: {policy: once}", "reentry: {}", 1) + okSteps,
			[]string{"reentry.policy: required (once, always or cooldown)"}},
		{"reentry policy unknown", strings.Replace(header, "policy: once", "policy: twice", 1) + okSteps,
			[]string{`reentry.policy: must be once, always or cooldown (got "twice")`}},
		{"cooldown required", strings.Replace(header, "policy: once", "policy: cooldown", 1) + okSteps,
			[]string{"reentry.cooldown: required when reentry.policy is cooldown"}},
		{"cooldown negative", strings.Replace(header, "policy: once", "policy: cooldown, cooldown: -5m", 1) + okSteps,
			[]string{"reentry.cooldown: must be greater than 0"}},
		{"cooldown without the policy", strings.Replace(header, "policy: once", "policy: always, cooldown: 1d", 1) + okSteps,
			[]string{"reentry.cooldown: must be empty unless reentry.policy is cooldown"}},
		{"goal event required", header + "goal: {}\n" + okSteps,
			[]string{"goal.event: required"}},
		{"exit events", header + "goal: {event: purchase}\nexit_events: [unsubscribed, '', unsubscribed, purchase]\n" + okSteps,
			[]string{
				"exit_events[1]: must not be empty",
				`exit_events[2]: duplicate event "unsubscribed" (also exit_events[0])`,
				`exit_events[3]: "purchase" is the goal event; an event cannot both convert and exit the journey`,
			}},
		{"journey class", header + "class: promotional\n" + okSteps,
			[]string{`class: must be marketing or transactional (got "promotional")`}},

		// Steps and references.
		{"no steps", header + "steps: []\n",
			[]string{"steps: at least one step is required"}},
		{"step id required", header + "steps: [{wait: {duration: 1h}}]\n",
			[]string{"steps[0].id: required"}},
		{"step id pattern", header + "steps: [{id: Step One, wait: {duration: 1h}}]\n",
			[]string{`steps[0].id: must be 1-64 characters of a-z, 0-9, "_" and "-", starting with a letter or digit (got "Step One")`}},
		{"duplicate step id", header + `
steps:
  - {id: first, wait: {duration: 1h}}
  - {id: second, wait: {duration: 1h}}
  - {id: first, wait: {duration: 1h}}
`, []string{`steps[2].id: duplicate step id "first" (also steps[0])`}},
		{"no action", header + "steps: [{id: a}]\n",
			[]string{"steps[0]: step must have exactly one of send, wait, wait_until, wait_for, branch, webhook, exit, split, audience (found none)"}},
		{"two actions", header + "steps: [{id: a, wait: {duration: 1h}, exit: {}}]\n",
			[]string{"steps[0]: step must have exactly one of send, wait, wait_until, wait_for, branch, webhook, exit, split, audience (found wait and exit)"}},
		{"unknown next", header + "steps: [{id: a, wait: {duration: 1h}, next: foo}]\n",
			[]string{`steps[0].next: unknown step "foo"`}},
		{"unknown wait_for targets", header + "steps: [{id: a, wait_for: {event: e, timeout: 1h, on_event: yes_path, on_timeout: no_path}}]\n",
			[]string{
				`steps[0].wait_for.on_event: unknown step "yes_path"`,
				`steps[0].wait_for.on_timeout: unknown step "no_path"`,
			}},
		{"unknown branch targets", header + "steps: [{id: a, branch: {condition: 'true', then: t, else: e}}]\n",
			[]string{
				`steps[0].branch.then: unknown step "t"`,
				`steps[0].branch.else: unknown step "e"`,
			}},
		{"exit with next", header + `
steps:
  - {id: a, exit: {}, next: b}
  - {id: b, wait: {duration: 1h}}
`, []string{
			"steps[0].next: an exit step ends the journey and cannot have next",
			"steps[1]: unreachable from the first step",
		}},
		{"unreachable steps", header + `
steps:
  - {id: a, wait: {duration: 1h}, next: c}
  - {id: b, wait: {duration: 1h}}
  - {id: c, exit: {}}
  - {id: d, wait: {duration: 1h}}
`, []string{
			"steps[1]: unreachable from the first step",
			"steps[3]: unreachable from the first step",
		}},
		{"loop without a wait", header + `
steps:
  - {id: a, send: {channel: sms, sms: {body: hi}}}
  - {id: b, wait: {duration: 1h}}
  - {id: c, send: {channel: sms, sms: {body: again}}}
  - {id: d, branch: {condition: 'true', then: e}}
  - {id: e, send: {channel: sms, sms: {body: hi}}, next: c}
`, []string{`steps[4].next: loop back to "c" without a wait, wait_until or wait_for step`}},
		{"branch loop without a wait", header + `
steps:
  - {id: a, send: {channel: sms, sms: {body: hi}}}
  - {id: b, branch: {condition: 'true', then: a, else: c}}
  - {id: c, exit: {}}
`, []string{`steps[1].branch.then: loop back to "a" without a wait, wait_until or wait_for step`}},
		{"a loop through wait_until waits", header + `
steps:
  - {id: a, send: {channel: sms, sms: {body: hi}}}
  - {id: b, wait_until: {time: "09:30"}}
  - {id: c, branch: {condition: 'true', then: a, else: d}}
  - {id: d, exit: {}}
`, []string{}},

		// Wait until a local time.
		{"wait_until time required", header + "steps: [{id: a, wait_until: {days: [mon]}}]\n",
			[]string{"steps[0].wait_until.time: required"}},
		{"wait_until time format", header + `
steps:
  - {id: a, wait_until: {time: "9:30"}}
  - {id: b, wait_until: {time: "24:00"}}
  - {id: c, wait_until: {time: "09:60"}}
  - {id: d, wait_until: {time: "09:30:00"}}
`, []string{
			`steps[0].wait_until.time: must be a local time "HH:MM" from 00:00 to 23:59 (got "9:30")`,
			`steps[1].wait_until.time: must be a local time "HH:MM" from 00:00 to 23:59 (got "24:00")`,
			`steps[2].wait_until.time: must be a local time "HH:MM" from 00:00 to 23:59 (got "09:60")`,
			`steps[3].wait_until.time: must be a local time "HH:MM" from 00:00 to 23:59 (got "09:30:00")`,
		}},
		{"wait_until days", header + `steps: [{id: a, wait_until: {time: "09:30", days: [mon, Tuesday, wed, MON]}}]` + "\n",
			[]string{
				`steps[0].wait_until.days[1]: unknown day "Tuesday" (use mon, tue, wed, thu, fri, sat, sun)`,
				`steps[0].wait_until.days[3]: duplicate day "MON" (also days[0])`,
			}},
		{"wait_until empty days", header + `steps: [{id: a, wait_until: {time: "09:30", days: []}}]` + "\n",
			[]string{"steps[0].wait_until.days: must list at least one day; leave days out for every day"}},
		{"wait_until and wait", header + `steps: [{id: a, wait: {duration: 1h}, wait_until: {time: "09:30"}}]` + "\n",
			[]string{"steps[0]: step must have exactly one of send, wait, wait_until, wait_for, branch, webhook, exit, split, audience (found wait and wait_until)"}},

		// Webhook.
		{"webhook destination and payload required", header + "steps: [{id: a, webhook: {}}]\n",
			[]string{"steps[0].webhook.destination: required", "steps[0].webhook.payload: required: the JSON object to post"}},
		{"webhook destination pattern", header + "steps: [{id: a, webhook: {destination: 'https://crm.example.com', payload: {a: b}}}]\n",
			[]string{`steps[0].webhook.destination: must be 1-64 characters of a-z, 0-9, "_" and "-", starting with a letter or digit (got "https://crm.example.com")`}},
		{"webhook payload templates", header + "steps: [{id: a, webhook: {destination: crm, payload: {who: {email: '{{ .contact.email | shout }}'}}}}]\n",
			[]string{`steps[0].webhook.payload.who.email: invalid template (line 1): function "shout" not defined`}},

		// Send.
		{"channel required", header + "steps: [{id: a, send: {sms: {body: hi}}}]\n",
			[]string{"steps[0].send.channel: required (email, sms or best), or a waterfall"}},
		{"ads channel", header + "steps: [{id: a, send: {channel: ads}}]\n",
			[]string{`steps[0].send.channel: channel "ads" cannot be used in a send step yet`}},
		{"unknown channel", header + "steps: [{id: a, send: {channel: push}}]\n",
			[]string{`steps[0].send.channel: unknown channel "push" (use email, sms or best)`}},
		// send_time, channel: best, waterfall.
		{"send_time unknown", header + "steps: [{id: a, send: {channel: sms, send_time: soon, sms: {body: hi}}}]\n",
			[]string{`steps[0].send.send_time: unknown send_time "soon" (use best, or leave it out to send at once)`}},
		{"within without send_time", header + "steps: [{id: a, send: {channel: sms, within: 24h, sms: {body: hi}}}]\n",
			[]string{`steps[0].send.within: only with send_time: best`}},
		{"within too short", header + "steps: [{id: a, send: {channel: sms, send_time: best, within: 30m, sms: {body: hi}}}]\n",
			[]string{`steps[0].send.within: must be at least 1h (got 30m0s)`}},
		{"within too long", header + "steps: [{id: a, send: {channel: sms, send_time: best, within: 8d, sms: {body: hi}}}]\n",
			[]string{`steps[0].send.within: must be at most 7d: a week holds every hour of the week (got 8d)`}},
		{"best with one message", header + "steps: [{id: a, send: {channel: best, sms: {body: hi}}}]\n",
			[]string{`steps[0].send: channel best needs a message for at least two channels (email and sms) to choose between`}},
		{"best and waterfall", header + "steps: [{id: a, send: {channel: best, waterfall: [{channel: email}, {channel: sms, after: 1d}], sms: {body: hi}, email: {subject: s, text: t}}}]\n",
			[]string{`steps[0].send.waterfall: must be empty when channel is best: choose one or the other`}},
		{"waterfall stages", header + `
steps:
  - id: a
    send:
      send_time: best
      waterfall: [{channel: email, after: 1h}, {channel: sms}, {channel: sms, after: 1d}, {channel: push, after: 1d}]
      email: {subject: s, text: t}
`, []string{
			"steps[0].send.send_time: cannot be combined with a waterfall",
			"steps[0].send.waterfall[0].after: must be empty on the first stage, which is sent at once",
			"steps[0].send.waterfall[1].channel: the step has no sms message for this stage (add send.sms)",
			"steps[0].send.waterfall[1].after: required: how long the previous stage has to earn an engagement (for example 24h)",
			"steps[0].send.waterfall[2].channel: the step has no sms message for this stage (add send.sms)",
			"steps[0].send.waterfall[2].channel: sms is already an earlier stage",
			`steps[0].send.waterfall[3].channel: unknown channel "push" (use email or sms)`,
		}},
		{"waterfall with a channel", header + "steps: [{id: a, send: {channel: email, waterfall: [{channel: email}, {channel: sms, after: 1d}], sms: {body: hi}, email: {subject: s, text: t}}}]\n",
			[]string{`steps[0].send.channel: must be empty with a waterfall: the stages name the channels`}},
		{"waterfall of one", header + "steps: [{id: a, send: {waterfall: [{channel: email}], email: {subject: s, text: t}}}]\n",
			[]string{`steps[0].send.waterfall: needs at least two stages (with one, use channel)`}},
		{"waterfall with a fallback channel", strings.Replace(header, "reentry: {policy: once}", "reentry: {policy: once}\npolicy: {fallback_channel: email}", 1) +
			"steps: [{id: a, send: {waterfall: [{channel: email}, {channel: sms, after: 1d}], sms: {body: hi}, email: {subject: s, text: t}}}]\n",
			[]string{`steps[0].send: policy.fallback_channel cannot be combined with channel: best or a waterfall, which choose the channel themselves`}},
		{"send class", header + "steps: [{id: a, send: {channel: sms, class: urgent, sms: {body: hi}}}]\n",
			[]string{`steps[0].send.class: must be marketing or transactional (got "urgent")`}},
		{"email message required", header + "steps: [{id: a, send: {channel: email, sms: {body: hi}}}]\n",
			[]string{
				"steps[0].send.email: required when channel is email",
				"steps[0].send.sms: must be empty when channel is email (unless policy.fallback_channel is sms: then it is the fallback message)",
			}},
		{"sms message required", header + "steps: [{id: a, send: {channel: sms, email: {subject: s, text: t}}}]\n",
			[]string{
				"steps[0].send.email: must be empty when channel is sms (unless policy.fallback_channel is email: then it is the fallback message)",
				"steps[0].send.sms: required when channel is sms",
			}},
		{"email empty", header + "steps: [{id: a, send: {channel: email, email: {}}}]\n",
			[]string{"steps[0].send.email: needs either template_id with data, or subject with html and/or text"}},
		{"email both styles", header + "steps: [{id: a, send: {channel: email, email: {template_id: d-1, data: {x: y}, subject: s, text: t}}}]\n",
			[]string{"steps[0].send.email: use either template_id with data, or subject with html and/or text, not both"}},
		{"template id format", header + "steps: [{id: a, send: {channel: email, email: {template_id: welcome-v2, data: {x: y}}}}]\n",
			[]string{`steps[0].send.email.template_id: must be a SendGrid dynamic template id starting with "d-" (got "welcome-v2")`}},
		{"template id without data", header + "steps: [{id: a, send: {channel: email, email: {template_id: d-123}}}]\n",
			[]string{"steps[0].send.email.data: missing template data"}},
		{"data without template id", header + "steps: [{id: a, send: {channel: email, email: {data: {x: y}}}}]\n",
			[]string{"steps[0].send.email.template_id: required with data"}},
		{"subject required", header + "steps: [{id: a, send: {channel: email, email: {html: '<p>hi</p>'}}}]\n",
			[]string{"steps[0].send.email.subject: required"}},
		{"body required", header + "steps: [{id: a, send: {channel: email, email: {subject: hi}}}]\n",
			[]string{"steps[0].send.email: needs html, text or both"}},
		{"sms body required", header + "steps: [{id: a, send: {channel: sms, sms: {body: ''}}}]\n",
			[]string{"steps[0].send.sms.body: required"}},
		{"sms body too long", header + "steps: [{id: a, send: {channel: sms, sms: {body: '" + strings.Repeat("é", 1601) + "'}}}]\n",
			[]string{"steps[0].send.sms.body: must be at most 1600 characters (got 1601)"}},
		{"email subject too long", header + "steps: [{id: a, send: {channel: email, email: {subject: '" + strings.Repeat("é", 999) + "', text: t}}}]\n",
			[]string{"steps[0].send.email.subject: must be at most 998 characters (got 999)"}},
		{"media url", header + "steps: [{id: a, send: {channel: sms, sms: {body: hi, media_url: ['https://ok.example.com/a.png', '/relative.png', 'ftp://x/y', 'https://']}}}]\n",
			[]string{
				`steps[0].send.sms.media_url[1]: must be an absolute http or https URL (got "/relative.png")`,
				`steps[0].send.sms.media_url[2]: must be an absolute http or https URL (got "ftp://x/y")`,
				`steps[0].send.sms.media_url[3]: must be an absolute http or https URL (got "https://")`,
			}},

		// Templates.
		{"template syntax", header + "steps: [{id: a, send: {channel: sms, sms: {body: 'Hi {{ .contact.first_name '}}}]\n",
			[]string{"steps[0].send.sms.body: invalid template (line 1): unclosed action"}},
		{"template function", header + "steps: [{id: a, send: {channel: email, email: {subject: '{{ .contact.first_name | shout }}', text: t}}}]\n",
			[]string{`steps[0].send.email.subject: invalid template (line 1): function "shout" not defined`}},
		{"internal function", header + "steps: [{id: a, send: {channel: sms, sms: {body: '{{ _tutti_required \"x\" .contact.a }}'}}}]\n",
			[]string{`steps[0].send.sms.body: invalid template (line 1): function "_tutti_required" not defined`}},
		{"template root field", header + "steps: [{id: a, send: {channel: sms, sms: {body: 'Hi {{ .first_name }}'}}}]\n",
			[]string{`steps[0].send.sms.body: unknown template field ".first_name": use .contact.<attribute> or .journey.<field>`}},
		{"template root variable", header + "steps: [{id: a, send: {channel: sms, sms: {body: '{{ with .contact.a }}{{ $.user.name }}{{ end }}'}}}]\n",
			[]string{`steps[0].send.sms.body: unknown template field ".user.name": use .contact.<attribute> or .journey.<field>`}},
		{"template whole data", header + "steps: [{id: a, send: {channel: sms, sms: {body: '{{ . }}'}}}]\n",
			[]string{`steps[0].send.sms.body: template uses the whole data ".": use .contact.<attribute> or .journey.<field>`}},
		{"template journey field", header + "steps: [{id: a, send: {channel: sms, sms: {body: '{{ .journey.step }}'}}}]\n",
			[]string{`steps[0].send.sms.body: unknown template field ".journey.step": .journey has only id and version`}},
		{"template in email data", header + `
steps:
  - id: a
    send:
      channel: email
      email:
        template_id: d-1
        data: {ok: '{{ .contact.a }}', items: [{name: '{{ .product.name }}'}], "first name": '{{ .contact.b '}
`, []string{
			`steps[0].send.email.data["first name"]: invalid template (line 1): unclosed action`,
			`steps[0].send.email.data.items[0].name: unknown template field ".product.name": use .contact.<attribute> or .journey.<field>`,
		}},
		{"html unclosed attribute", header + "steps: [{id: a, send: {channel: email, email: {subject: s, html: '<a href=\"{{ .contact.url }}>x</a>'}}}]\n",
			[]string{`steps[0].send.email.html: invalid HTML template: the HTML ends inside a tag, attribute, comment or script: check for an unclosed quote or tag`}},

		// Waits and branches.
		{"wait duration", header + "steps: [{id: a, wait: {duration: 0s}}]\n",
			[]string{"steps[0].wait.duration: must be greater than 0"}},
		{"wait_for event and timeout", header + `
steps:
  - {id: a, wait: {duration: 1h}}
  - {id: b, wait: {duration: 1h}}
  - {id: c, wait: {duration: 1h}}
  - {id: d, wait_for: {event: '', timeout: 0s}}
`, []string{
			"steps[3].wait_for.event: required",
			"steps[3].wait_for.timeout: must be greater than 0",
		}},
		{"branch condition required", header + "steps: [{id: a, branch: {then: a}}, {id: b, exit: {}}]\n",
			[]string{
				"steps[0].branch.condition: required",
				`steps[0].branch.then: loop back to "a" without a wait, wait_until or wait_for step`,
			}},
		{"branch condition does not compile", header + "steps: [{id: a, branch: {condition: 'customer.plan == \"pro\"'}}]\n",
			[]string{"steps[0].branch.condition: invalid condition: undeclared reference to 'customer' (at line 1, column 1)"}},
		{"branch condition not boolean", header + "steps: [{id: a, branch: {condition: 'contact.first_name + \"!\"'}}]\n",
			[]string{"steps[0].branch.condition: condition must be true or false, but it is a string"}},
		{"policy settings out of range", header + `policy:
  subscription: "Promo!"
  on_cap: drop
  global_cap: {max: 3}
  cooldowns: {fax: 1h, sms: -1h}
  fallback_channel: ads
  unengaged_days: -5
  abandonment: true
` + okSteps,
			[]string{
				`policy.subscription: ` + `must be 1-64 characters of a-z, 0-9, "_" and "-", starting with a letter or digit (got "Promo!")`,
				`policy.on_cap: must be defer or skip (got "drop")`,
				`policy.global_cap.window: must be greater than 0`,
				`policy.cooldowns.fax: unknown channel "fax" (use email, sms or ads)`,
				`policy.cooldowns.sms: must be 0 (no cooldown) or more`,
				`policy.fallback_channel: must be email or sms (got "ads")`,
				`policy.unengaged_days: must be 0 (rule off) or more`,
				`policy.abandonment: an abandonment journey must be triggered by its abandonment event (trigger.type event)`,
			}},
		{"fallback message allowed only with a fallback channel", header + "policy: {fallback_channel: email}\n" +
			"steps: [{id: a, send: {channel: sms, sms: {body: hi}, email: {subject: Hi, text: Hello}}}, {id: b, send: {channel: email, email: {subject: Hi, text: Hi}, sms: {body: hi}}}]\n",
			[]string{"steps[1].send.sms: must be empty when channel is email (unless policy.fallback_channel is sms: then it is the fallback message)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := validateYAML(t, tt.doc)
			lines := make([]string, len(got))
			for i, p := range got {
				lines[i] = p.String()
			}
			require.Equal(t, tt.want, lines)
		})
	}
}

func TestValidate_EveryProblemInDocumentOrder(t *testing.T) {
	got := validateYAML(t, `
id: Bad
name: ''
trigger: {type: event}
reentry: {policy: cooldown}
steps:
  - {id: a, wait: {duration: 1h}, next: zz}
  - {id: b, send: {channel: email, email: {subject: '{{ .x }}', text: t}}}
  - {id: a, wait_for: {event: e, timeout: 0s}}
`)
	want := Problems{
		{Path: "id", Message: `must be 1-64 characters of a-z, 0-9, "_" and "-", starting with a letter or digit (got "Bad")`},
		{Path: "name", Message: "required"},
		{Path: "trigger.event", Message: "required when trigger.type is event"},
		{Path: "reentry.cooldown", Message: "required when reentry.policy is cooldown"},
		{Path: "steps[0].next", Message: `unknown step "zz"`},
		{Path: "steps[1]", Message: "unreachable from the first step"},
		{Path: "steps[1].send.email.subject", Message: `unknown template field ".x": use .contact.<attribute> or .journey.<field>`},
		{Path: "steps[2]", Message: "unreachable from the first step"},
		{Path: "steps[2].id", Message: `duplicate step id "a" (also steps[0])`},
		{Path: "steps[2].wait_for.timeout", Message: "must be greater than 0"},
	}
	require.Equal(t, want, got)
	require.Equal(t, strings.Join([]string{
		`id: must be 1-64 characters of a-z, 0-9, "_" and "-", starting with a letter or digit (got "Bad")`,
		"name: required",
		"trigger.event: required when trigger.type is event",
		"reentry.cooldown: required when reentry.policy is cooldown",
		`steps[0].next: unknown step "zz"`,
		"steps[1]: unreachable from the first step",
		`steps[1].send.email.subject: unknown template field ".x": use .contact.<attribute> or .journey.<field>`,
		"steps[2]: unreachable from the first step",
		`steps[2].id: duplicate step id "a" (also steps[0])`,
		"steps[2].wait_for.timeout: must be greater than 0",
	}, "\n"), got.Error())
}

func TestProblems_JSON(t *testing.T) {
	b, err := json.Marshal(Problems{{Path: "steps[3].wait_for.timeout", Message: "must be greater than 0"}})
	require.NoError(t, err)
	require.JSONEq(t, `[{"path": "steps[3].wait_for.timeout", "message": "must be greater than 0"}]`, string(b))
}

func TestValidate_ZeroSpec(t *testing.T) {
	require.Equal(t, Problems{
		{Path: "id", Message: "required"},
		{Path: "name", Message: "required"},
		{Path: "trigger.type", Message: "required (api, event or segment)"},
		{Path: "reentry.policy", Message: "required (once, always or cooldown)"},
		{Path: "steps", Message: "at least one step is required"},
	}, Validate(Spec{}))
}
