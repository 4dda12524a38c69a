package journey

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func renderData(attrs map[string]any) map[string]any {
	return TemplateData(ContactView{
		ID: "c_1", ExternalID: "u-42", Email: "ana@example.com", Phone: "+14155550101", TimeZone: "Europe/Paris",
		Attributes: attrs,
	}, "welcome", 7)
}

func TestTemplateData(t *testing.T) {
	attrs := map[string]any{"first_name": "Ana", "email": "spoof@example.com", "score": 3.5}
	data := renderData(attrs)
	require.Equal(t, map[string]any{
		"contact": map[string]any{
			"first_name": "Ana", "score": 3.5,
			"id": "c_1", "external_id": "u-42", "email": "ana@example.com", "phone": "+14155550101", "time_zone": "Europe/Paris",
		},
		"journey": map[string]any{"id": "welcome", "version": 7},
	}, data)
	require.Equal(t, "spoof@example.com", attrs["email"], "the caller's attributes are not modified")

	empty := TemplateData(ContactView{}, "j", 1)
	require.Equal(t, "", empty["contact"].(map[string]any)["email"], "built-in fields are always present")
}

func TestRenderSMS_Templates(t *testing.T) {
	data := renderData(map[string]any{
		"first_name": "ana",
		"last_name":  "mcDonald-smith",
		"nickname":   "",
		"middle":     nil, // a JSON null attribute
		"orders":     0.0,
		"opted_in":   false,
		"address":    map[string]any{"city": "Lyon"},
		"tags":       []any{"beta", "vip"},
	})
	tests := []struct {
		name, body, want string
	}{
		{"attribute", "Hi {{ .contact.first_name }}", "Hi ana"},
		{"built-in field", "{{ .contact.email }} / {{ .journey.id }} v{{ .journey.version }}", "ana@example.com / welcome v7"},
		{"default keeps a present value", `Hi {{ .contact.first_name | default "there" }}`, "Hi ana"},
		{"default for a missing attribute", `Hi {{ .contact.surname | default "there" }}`, "Hi there"},
		{"default for an empty string", `Hi {{ .contact.nickname | default "there" }}`, "Hi there"},
		{"default for null", `Hi {{ .contact.middle | default "there" }}`, "Hi there"},
		{"default keeps zero", `{{ .contact.orders | default 5 }} orders`, "0 orders"},
		{"default keeps false", `{{ .contact.opted_in | default true }}`, "false"},
		{"default called directly", `Hi {{ default "there" .contact.surname }}`, "Hi there"},
		{"default after other functions", `Hi {{ .contact.surname | upper | default "there" }}`, "Hi there"},
		{"default of a missing nested field", `{{ .contact.billing.city | default "your city" }}`, "your city"},
		{"functions after default", `{{ .contact.surname | default "friend" | capitalize }}`, "Friend"},
		{"upper", "{{ .contact.first_name | upper }}", "ANA"},
		{"lower", `{{ "ANA" | lower }}`, "ana"},
		{"capitalize keeps inner capitals", "{{ capitalize .contact.first_name }} {{ capitalize .contact.last_name }}", "Ana McDonald-Smith"},
		{"if on a missing attribute", `{{ if .contact.surname }}{{ .contact.surname }}{{ else }}no surname{{ end }}`, "no surname"},
		{"if on a present attribute", `{{ if .contact.first_name }}Hi {{ .contact.first_name }}{{ end }}`, "Hi ana"},
		{"with", `{{ with .contact.address }}{{ .city }}{{ end }}`, "Lyon"},
		{"with on a missing attribute", `{{ with .contact.billing }}{{ .city }}{{ else }}none{{ end }}`, "none"},
		{"range", `{{ range .contact.tags }}#{{ . }} {{ end }}`, "#beta #vip "},
		{"range over a missing attribute", `{{ range .contact.nothing }}x{{ else }}empty{{ end }}`, "empty"},
		{"root variable", `{{ $.contact.first_name }}`, "ana"},
		{"variable holding a default", `{{ $n := .contact.surname | default "friend" }}Hi {{ $n }}`, "Hi friend"},
		{"nested field", `{{ .contact.address.city }}`, "Lyon"},
		{"no escaping in SMS", `{{ "<b>&" }}`, "<b>&"},
		{"plain text", "No templates here {not one}", "No templates here {not one}"},
		{"index", `{{ index .contact "first_name" }}`, "ana"},
		{"defined template", `{{ define "greet" }}Hi {{ .first_name }}{{ end }}{{ template "greet" .contact }}!`, "Hi ana!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RenderSMS(SMSMessage{Body: tt.body}, data)
			require.NoError(t, err)
			require.Equal(t, tt.want, got.Body)
		})
	}
}

func TestRender_MissingData(t *testing.T) {
	data := renderData(map[string]any{
		"first_name": "Ana",
		"middle":     nil,
		"address":    map[string]any{"city": "Lyon"},
	})
	tests := []struct {
		name, body, field string
	}{
		{"missing attribute", "Hi {{ .contact.last_name }}", ".contact.last_name"},
		{"null attribute", "Hi {{ .contact.middle }}", ".contact.middle"},
		{"missing parent", "{{ .contact.billing.city }}", ".contact.billing.city"},
		{"missing leaf", "{{ .contact.address.zip }}", ".contact.address.zip"},
		{"through a function", "{{ .contact.last_name | upper }}", ".contact.last_name"},
		{"as a function argument", "{{ upper .contact.last_name }}", ".contact.last_name"},
		{"as a printf argument", `{{ printf "%s!" .contact.last_name }}`, ".contact.last_name"},
		{"inside if", "{{ if .contact.first_name }}{{ .contact.last_name }}{{ end }}", ".contact.last_name"},
		{"inside with", "{{ with .contact.address }}{{ .zip }}{{ end }}", ".zip"},
		{"root variable", "{{ $.contact.last_name }}", "$.contact.last_name"},
		{"unknown root", "{{ .customer.name }}", ".customer.name"},
		{"assigned to a variable", "{{ $n := .contact.last_name }}{{ $n }}", ".contact.last_name"},
		{"index of a missing key", `{{ index .contact "last_name" }}`, `index .contact "last_name"`},
		{"inside a defined template", `{{ define "greet" }}Hi {{ .last_name }}{{ end }}{{ template "greet" .contact }}`, ".last_name"},
		{"default that does not cover it", `{{ .contact.last_name | printf "%v" }}{{ default "x" "y" }}`, ".contact.last_name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := RenderSMS(SMSMessage{Body: tt.body}, data)
			var missing *MissingDataError
			require.True(t, errors.As(err, &missing), "want *MissingDataError, got %v", err)
			require.Equal(t, tt.field, missing.Field)
			require.EqualError(t, err, "missing template data: "+tt.field)
		})
	}
}

func TestRenderEmail_Inline(t *testing.T) {
	data := renderData(map[string]any{"first_name": `Ana <script>alert("x")</script>`, "site": "javascript:alert(1)"})
	got, err := RenderEmail(EmailMessage{
		Subject: "Hi {{ .contact.first_name }}\r\nBcc: someone",
		HTML:    `<p>Hi {{ .contact.first_name }}</p><a href="{{ .contact.site }}">site</a><a href="https://example.com/u?e={{ .contact.email }}">unsubscribe</a>`,
		Text:    "Hi {{ .contact.first_name }}",
	}, data)
	require.NoError(t, err)
	require.Equal(t, `Hi Ana <script>alert("x")</script> Bcc: someone`, got.Subject, "line breaks removed from the subject")
	require.Equal(t, `<p>Hi Ana &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</p><a href="#ZgotmplZ">site</a><a href="https://example.com/u?e=ana%40example.com">unsubscribe</a>`, got.HTML)
	require.Equal(t, `Hi Ana <script>alert("x")</script>`, got.Text, "text bodies are not HTML-escaped")
	require.Empty(t, got.TemplateID)
	require.Nil(t, got.TemplateData)
}

func TestRenderEmail_HTMLMissingData(t *testing.T) {
	_, err := RenderEmail(EmailMessage{Subject: "Hi", HTML: `<a href="{{ .contact.cart_url }}">cart</a>`}, renderData(nil))
	var missing *MissingDataError
	require.ErrorAs(t, err, &missing)
	require.Equal(t, ".contact.cart_url", missing.Field)

	got, err := RenderEmail(EmailMessage{Subject: "Hi", HTML: `<p>{{ .contact.first_name | default "there" }}</p>`}, renderData(nil))
	require.NoError(t, err)
	require.Equal(t, "<p>there</p>", got.HTML)
}

func TestRenderEmail_PredefinedEscaper(t *testing.T) {
	got, err := RenderEmail(EmailMessage{Subject: "s", HTML: `<p>{{ .contact.first_name | html }}</p>`}, renderData(map[string]any{"first_name": "<A&B>"}))
	require.NoError(t, err)
	require.Equal(t, "<p>&lt;A&amp;B&gt;</p>", got.HTML)
}

func TestRenderEmail_DynamicTemplate(t *testing.T) {
	in := EmailMessage{
		TemplateID: "d-5f1e0c3a",
		Data: map[string]any{
			"first_name": `{{ .contact.first_name | default "there" }}`,
			"cart":       map[string]any{"url": "{{ .contact.cart_url }}", "items": []any{"{{ .contact.item }}", 2.0, true}},
			"static":     "no template <b>",
			"count":      3.0,
			"nothing":    nil,
		},
	}
	data := renderData(map[string]any{"cart_url": "https://shop.example.com/c/1", "item": "<Shoes>"})
	got, err := RenderEmail(in, data)
	require.NoError(t, err)
	require.Equal(t, RenderedEmail{
		TemplateID: "d-5f1e0c3a",
		TemplateData: map[string]any{
			"first_name": "there",
			"cart":       map[string]any{"url": "https://shop.example.com/c/1", "items": []any{"<Shoes>", 2.0, true}},
			"static":     "no template <b>",
			"count":      3.0,
			"nothing":    nil,
		},
	}, got)
	require.Equal(t, "{{ .contact.cart_url }}", in.Data["cart"].(map[string]any)["url"], "the spec is not modified")

	_, err = RenderEmail(in, renderData(nil))
	var missing *MissingDataError
	require.ErrorAs(t, err, &missing)
	require.Contains(t, []string{".contact.cart_url", ".contact.item"}, missing.Field)
}

func TestRenderSMS_Limits(t *testing.T) {
	long := strings.Repeat("é", 1500)
	got, err := RenderSMS(SMSMessage{Body: "{{ .contact.bio }}", MediaURL: []string{"https://example.com/a.png"}}, renderData(map[string]any{"bio": long}))
	require.NoError(t, err)
	require.Equal(t, long, got.Body)
	require.Equal(t, []string{"https://example.com/a.png"}, got.MediaURL)

	_, err = RenderSMS(SMSMessage{Body: "{{ .contact.bio }}{{ .contact.bio }}"}, renderData(map[string]any{"bio": long}))
	require.ErrorIs(t, err, ErrSMSTooLong)
	require.EqualError(t, err, "rendering SMS body: SMS body too long: 3000 characters, the limit is 1600")
	var tooLong *TooLongError
	require.ErrorAs(t, err, &tooLong)
	require.Equal(t, TooLongError{Channel: ChannelSMS, Field: "body", Length: 3000, Limit: MaxSMSBodyLength}, *tooLong)
}

func TestRenderEmail_SubjectLimit(t *testing.T) {
	msg := EmailMessage{Subject: "Hi {{ .contact.first_name }}", Text: "Hello"}
	name := strings.Repeat("é", MaxEmailSubjectLength-3)
	got, err := RenderEmail(msg, renderData(map[string]any{"first_name": name}))
	require.NoError(t, err)
	require.Equal(t, "Hi "+name, got.Subject)

	// A 1 MB attribute does not become a 1 MB subject.
	_, err = RenderEmail(msg, renderData(map[string]any{"first_name": strings.Repeat("x", 1<<20)}))
	var tooLong *TooLongError
	require.ErrorAs(t, err, &tooLong)
	require.Equal(t, TooLongError{Channel: ChannelEmail, Field: "subject", Length: 3 + 1<<20, Limit: MaxEmailSubjectLength}, *tooLong)
	require.EqualError(t, err, "rendering email subject: email subject too long: 1048579 characters, the limit is 998")
	require.NotErrorIs(t, err, ErrSMSTooLong)

	// Counted after line breaks become spaces and the ends are trimmed.
	_, err = RenderEmail(msg, renderData(map[string]any{"first_name": strings.Repeat("y", MaxEmailSubjectLength-3) + "\n\n  "}))
	require.NoError(t, err)
}

func TestRender_OtherErrors(t *testing.T) {
	data := renderData(map[string]any{"n": 1.0})
	tests := []struct {
		name string
		msg  SMSMessage
		want string
	}{
		{"syntax", SMSMessage{Body: "{{ .contact.n "}, "rendering body: invalid template (line 1): unclosed action"},
		{"unknown function", SMSMessage{Body: "{{ .contact.n | shout }}"}, `rendering body: invalid template (line 1): function "shout" not defined`},
		{"default with too many values", SMSMessage{Body: `{{ default "a" "b" "c" }}`}, `rendering body: template: message:1:3: executing "message" at <default "a" "b" "c">: error calling default: default takes a fallback and one value, got 2 values`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := RenderSMS(tt.msg, data)
			require.EqualError(t, err, tt.want)
			var missing *MissingDataError
			require.False(t, errors.As(err, &missing))
		})
	}
}

func TestRender_ConcurrentUse(t *testing.T) {
	msg := EmailMessage{Subject: "Hi {{ .contact.first_name }}", HTML: "<p>{{ .contact.first_name }}</p>"}
	done := make(chan error, 16)
	for i := range 16 {
		go func() {
			name := strings.Repeat("x", i+1)
			got, err := RenderEmail(msg, renderData(map[string]any{"first_name": name}))
			if err == nil && got.HTML != "<p>"+name+"</p>" {
				err = errors.New("wrong output " + got.HTML)
			}
			done <- err
		}()
	}
	for range 16 {
		require.NoError(t, <-done)
	}
}

func TestRenderWebhookPayload(t *testing.T) {
	t.Parallel()
	w := Webhook{Destination: "crm", Payload: map[string]any{
		"contact": map[string]any{"id": "{{ .contact.id }}", "email": "{{ .contact.email }}"},
		"journey": "{{ .journey.id }}",
		"score":   3.0,
		"tags":    []any{"hot", "{{ .contact.plan }}"},
	}}
	data := TemplateData(ContactView{ID: "c1", Email: "ana@example.com", Attributes: map[string]any{"plan": "pro"}}, "pricing", 2)
	got, err := RenderWebhookPayload(w, data)
	require.NoError(t, err)
	require.Equal(t, map[string]any{
		"contact": map[string]any{"id": "c1", "email": "ana@example.com"},
		"journey": "pricing",
		"score":   3.0,
		"tags":    []any{"hot", "pro"},
	}, got)

	_, err = RenderWebhookPayload(w, TemplateData(ContactView{ID: "c2", Email: "bo@example.com"}, "pricing", 2))
	var missing *MissingDataError
	require.ErrorAs(t, err, &missing)
	require.Equal(t, ".contact.plan", missing.Field)
}
