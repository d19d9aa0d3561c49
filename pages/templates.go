package pages

// stylesheet is the pages' only style, inline and allowed by its hash in
// the Content-Security-Policy.
const stylesheet = `
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--soft:#f6f8fa;--accent:#0969da;--danger:#cf222e;--ok:#1a7f37;--warn:#9a6700}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",sans-serif;color:var(--fg);background:#fff}
a{color:var(--accent)}
header.top{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1.5rem;padding:.7rem 1.5rem;border-bottom:1px solid var(--line);background:var(--soft)}
header.top .brand{font-weight:650;color:var(--fg);text-decoration:none;font-size:1.05rem}
header.top nav{display:flex;gap:1.1rem;flex:1}
header.top nav a{color:var(--muted);text-decoration:none;padding:.15rem 0;border-bottom:2px solid transparent}
header.top nav a:hover{color:var(--fg)}
header.top nav a[aria-current=page]{color:var(--fg);font-weight:600;border-bottom-color:var(--accent)}
header.top .who{color:var(--muted)}
main{max-width:76rem;margin:0 auto;padding:1.75rem 1.5rem 3rem}
h1{font-size:1.55rem;margin:0 0 .3rem;font-weight:650}
h2{font-size:1.1rem;margin:2rem 0 .6rem}
p.lead{color:var(--muted);margin:0 0 1.25rem;max-width:48rem}
.table-wrap{overflow-x:auto;border:1px solid var(--line);border-radius:8px}
table{border-collapse:collapse;width:100%}
th,td{padding:.65rem .8rem;text-align:left;vertical-align:top;border-bottom:1px solid var(--line)}
th{background:var(--soft);font-size:.75rem;font-weight:600;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);white-space:nowrap}
tbody tr:last-child td{border-bottom:0}
tbody tr:hover td{background:#fafbfc}
tr.current td{background:#f1f8ff}
td.actions{text-align:right;white-space:nowrap}
td time{white-space:nowrap}
.device{font-weight:600}
.badge{display:inline-block;margin-left:.35rem;padding:.05rem .5rem;border-radius:1rem;font-size:.72rem;font-weight:600;border:1px solid var(--line);color:var(--muted);vertical-align:.1em;white-space:nowrap}
.badge.current{background:var(--accent);border-color:var(--accent);color:#fff}
.badge.active{color:var(--ok);border-color:#1a7f3755}
.badge.expired{color:var(--warn);border-color:#9a670055}
.badge.bound{color:#8250df;border-color:#8250df55}
.muted{color:var(--muted)}
small{font-size:.8rem}
.mono,code,pre{font-family:ui-monospace,SFMono-Regular,"SF Mono",Menlo,Consolas,monospace;font-size:.85em}
.btn,button{font:inherit;font-size:.9rem;padding:.3rem .85rem;border-radius:6px;border:1px solid var(--line);background:#fff;color:var(--fg);cursor:pointer}
.btn:hover,button:hover{background:var(--soft)}
.btn.primary{background:var(--accent);border-color:var(--accent);color:#fff}
.btn.primary:hover{background:#0860ca}
.btn.danger{color:var(--danger);border-color:#cf222e66}
.btn.danger:hover{background:var(--danger);border-color:var(--danger);color:#fff}
form.inline{display:inline;margin:0}
form.below{margin:1.25rem 0 0;display:flex;align-items:center;gap:.75rem;flex-wrap:wrap}
.flash{padding:.65rem .9rem;border-radius:8px;background:#dafbe1;border:1px solid #1a7f3733;margin:0 0 1.25rem}
.flash.error{background:#ffebe9;border-color:#cf222e33}
.flash.alert{background:#fff8c5;border-color:#9a670033}
.badge.new{color:var(--warn);border-color:#9a670055}
.filters{display:flex;flex-wrap:wrap;gap:.6rem 1.1rem;align-items:end;margin:0 0 1rem;padding:.8rem 1rem;border:1px solid var(--line);border-radius:8px;background:var(--soft)}
.filters label{display:flex;flex-direction:column;font-size:.8rem;color:var(--muted);gap:.2rem}
.filters label.check{flex-direction:row;align-items:center;gap:.4rem;font-size:.9rem;color:var(--fg);padding-bottom:.35rem}
input,select{font:inherit;font-size:.9rem;padding:.3rem .5rem;border:1px solid var(--line);border-radius:6px;background:#fff;color:var(--fg)}
input[type=search]{min-width:15rem}
.pager{display:flex;justify-content:space-between;align-items:center;gap:1rem;margin-top:1rem}
.summary{margin:0 0 .6rem}
dl.fields{display:grid;grid-template-columns:max-content 1fr;gap:.45rem 1.75rem;margin:0;padding:1rem 1.2rem;border:1px solid var(--line);border-radius:8px}
dl.fields dt{color:var(--muted)}
dl.fields dd{margin:0;overflow-wrap:anywhere}
pre{margin:0;white-space:pre-wrap;overflow-wrap:anywhere}
.card{max-width:24rem;margin:2.5rem auto;padding:1.5rem 1.6rem;border:1px solid var(--line);border-radius:10px}
.card h1{margin-bottom:1rem}
.stack{display:flex;flex-direction:column;gap:.85rem}
.stack label{display:flex;flex-direction:column;gap:.25rem;font-size:.9rem}
.stack input{padding:.45rem .6rem}
.stack .btn{padding:.45rem}
footer{max-width:76rem;margin:0 auto;padding:0 1.5rem 2rem;color:var(--muted);font-size:.8rem}
`

// templates are the pages. "head" and "foot" are the layout; every other
// template is one page, executed with a page value.
const templates = `
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · {{(cfg).AppName}}</title>
<style>` + stylesheet + `</style></head>
<body><header class="top"><a class="brand" href="{{(cfg).HomeURL}}">{{(cfg).AppName}}</a>
<nav>{{if .Viewer.SignedIn}}<a href="{{url "/sessions"}}"{{if eq .Nav "sessions"}} aria-current="page"{{end}}>Your sessions</a>{{if .Viewer.Admin}}<a href="{{url "/admin/sessions"}}"{{if eq .Nav "admin"}} aria-current="page"{{end}}>All sessions</a>{{end}}{{end}}</nav>
{{if .Viewer.SignedIn}}<span class="who">Signed in as <b>{{.Viewer.Name}}</b></span>{{with (cfg).LogoutURL}}<form method="post" action="{{.}}" class="inline"><button class="btn">Sign out</button></form>{{end}}{{end}}
</header>
<main>
{{with .Message}}<p class="flash" role="status">{{.}}</p>{{end}}
{{end}}

{{define "foot"}}</main>
{{if (cfg).Locator}}<footer>This product includes GeoLite2 data created by MaxMind, available from <a href="https://www.maxmind.com">https://www.maxmind.com</a>.</footer>{{end}}
</body></html>
{{end}}

{{define "app"}}{{template "head" .}}{{.Body}}{{template "foot" .}}{{end}}

{{define "error"}}{{template "head" .}}
<h1>{{.Title}}</h1>
<p class="lead">{{.Data}}</p>
<p>{{if .Viewer.SignedIn}}<a href="{{url "/sessions"}}">Back to your sessions</a>{{else}}<a href="{{(cfg).HomeURL}}">Back</a>{{end}}</p>
{{template "foot" .}}{{end}}

{{define "sessions"}}{{template "head" .}}
<h1>Your sessions</h1>
<p class="lead">These devices are signed in to your account, most recently active first. If you do not recognise one, revoke it: that device is signed out at once.</p>
{{with .Data}}
{{template "event-notices" .}}
<div class="table-wrap"><table class="sessions">
<thead><tr><th>Device</th><th>Location</th><th>IP address</th><th>Signed in</th><th>Last activity</th><th></th></tr></thead>
<tbody>
{{range .Rows}}<tr id="session-{{.ID}}"{{if .Current}} class="current"{{end}}>
<td><span class="device" title="{{.UserAgent}}">{{.Device}}</span>{{if .Current}}<span class="badge current">This device</span>{{end}}{{if .DeviceBound}}<span class="badge bound" title="Device-bound session (DBSC): its cookie works only on the device holding its key">Device-bound</span>{{end}}<br><small class="muted">{{.DeviceFull}}</small></td>
<td>{{.Location}}</td>
<td class="mono">{{.IP}}</td>
<td><time datetime="{{iso .CreatedAt}}" title="{{when .CreatedAt}}">{{ago .CreatedAt}}</time></td>
<td><time datetime="{{iso .LastActivity}}" title="{{when .LastActivity}}">{{if .Current}}now{{else}}{{ago .LastActivity}}{{end}}</time></td>
<td class="actions">{{if not .Current}}<form method="post" action="{{url "/sessions"}}/{{.ID}}/revoke" class="inline"><button class="btn danger" title="Sign this device out">Revoke</button></form>{{end}}</td>
</tr>
{{else}}<tr><td colspan="6" class="muted">No live sessions.</td></tr>
{{end}}</tbody></table></div>
{{if .Others}}<form method="post" action="{{url "/sessions/revoke-others"}}" class="below"><button class="btn danger">Sign out everywhere else</button><span class="muted">Ends {{.Others}} other session{{if ne .Others 1}}s{{end}}; this device stays signed in.</span></form>{{end}}
{{template "event-list" .}}
{{end}}
{{template "foot" .}}{{end}}

{{define "admin"}}{{template "head" .}}
<h1>All sessions</h1>
<p class="lead">Every session in the database, most recently active first. Revoking one signs that device out at once.</p>
{{with .Data}}
<form method="get" action="{{url "/admin/sessions"}}" class="filters">
<label>State <select name="state">
<option value="active"{{if eq .State "active"}} selected{{end}}>Active</option>
<option value="expired"{{if eq .State "expired"}} selected{{end}}>Expired</option>
<option value="all"{{if eq .State "all"}} selected{{end}}>All</option>
</select></label>
<label class="check"><input type="checkbox" name="mine" value="1"{{if .Mine}} checked{{end}}> Only mine</label>
<label>Search <input type="search" name="q" value="{{.Search}}" placeholder="IP address or username" maxlength="100"></label>
<button class="btn primary">Filter</button>
{{if or .Search .Mine (ne .State "active")}}<a href="{{url "/admin/sessions"}}">Clear filters</a>{{end}}
</form>
<p class="summary muted">{{if .Total}}Showing {{.From}}–{{.To}} of {{.Total}} session{{if ne .Total 1}}s{{end}}{{else}}No sessions match.{{end}}</p>
<div class="table-wrap"><table class="admin">
<thead><tr><th>Owner</th><th>Device</th><th>Location</th><th>IP address</th><th>Signed in</th><th>Last activity</th><th>Expires</th><th></th></tr></thead>
<tbody>
{{range .Rows}}<tr id="session-{{.ID}}"{{if .Current}} class="current"{{end}}>
<td>{{if .Owner}}{{.Owner}}{{else}}<span class="muted">anonymous</span>{{end}}</td>
<td><span class="device" title="{{.UserAgent}}">{{.DeviceVersion}}</span>{{if .Current}}<span class="badge current">This device</span>{{end}}{{if .DeviceBound}}<span class="badge bound" title="Device-bound session (DBSC): its cookie works only on the device holding its key">Device-bound</span>{{end}}</td>
<td>{{.Location}}</td>
<td class="mono">{{.IP}}</td>
<td><time datetime="{{iso .CreatedAt}}" title="{{when .CreatedAt}}">{{ago .CreatedAt}}</time></td>
<td><time datetime="{{iso .LastActivity}}" title="{{when .LastActivity}}">{{ago .LastActivity}}</time></td>
<td>{{if .Expired}}<span class="badge expired">expired</span>{{else}}<time datetime="{{iso .ExpireDate}}" title="{{when .ExpireDate}}">{{ago .ExpireDate}}</time>{{end}}</td>
<td class="actions"><a href="{{.DetailURL}}">Details</a></td>
</tr>
{{else}}<tr><td colspan="8" class="muted">No sessions.</td></tr>
{{end}}</tbody></table></div>
{{if or .Prev .Next}}<nav class="pager">{{with .Prev}}<a class="btn" href="{{.}}" rel="prev">← Newer</a>{{else}}<span></span>{{end}}{{with .Next}}<a class="btn" href="{{.}}" rel="next">Older →</a>{{end}}</nav>{{end}}
{{end}}
{{template "foot" .}}{{end}}

{{define "detail"}}{{template "head" .}}
{{with .Data}}
<p><a href="{{url "/admin/sessions"}}">← All sessions</a></p>
<h1>Session <span class="mono">{{.Row.ID}}</span>{{if .Row.Current}}<span class="badge current">This device</span>{{end}}{{if .Row.Expired}}<span class="badge expired">expired</span>{{else}}<span class="badge active">active</span>{{end}}{{if .Row.DeviceBound}}<span class="badge bound" title="Device-bound session (DBSC): its cookie works only on the device holding its key">Device-bound</span>{{end}}</h1>
<dl class="fields">
<dt>Owner</dt><dd>{{if .Row.Owner}}{{.Row.Owner}} <span class="muted">(id {{.Row.OwnerID}})</span>{{else}}<span class="muted">anonymous</span>{{end}}</dd>
<dt>Device</dt><dd>{{.Row.DeviceFull}} <span class="muted">({{.Row.Kind}})</span></dd>
<dt>Device binding</dt><dd>{{if .Row.DeviceBound}}Device-bound (DBSC): requests need a short-lived cookie that only the device holding the key can renew{{else}}<span class="muted">none: the session cookie alone signs in</span>{{end}}</dd>
<dt>User agent</dt><dd class="mono">{{.Row.UserAgent}}</dd>
<dt>IP address</dt><dd class="mono">{{.Row.IP}}</dd>
<dt>Location</dt><dd>{{.Row.Location}}</dd>
<dt>Signed in</dt><dd>{{when .Row.CreatedAt}} <span class="muted">({{ago .Row.CreatedAt}})</span></dd>
<dt>Last activity</dt><dd>{{when .Row.LastActivity}} <span class="muted">({{ago .Row.LastActivity}})</span></dd>
<dt>Last saved</dt><dd>{{when .UpdatedAt}}</dd>
<dt>Expires</dt><dd>{{when .Row.ExpireDate}} <span class="muted">({{ago .Row.ExpireDate}})</span></dd>
</dl>
<form method="post" action="{{.RevokeURL}}" class="below"><button class="btn danger">Revoke this session</button></form>
<h2>Data <span class="muted">({{.Size}} bytes stored)</span></h2>
{{with .DecodeError}}<p class="flash error">The stored data does not decode: {{.}}</p>{{end}}
<div class="table-wrap"><table class="data">
<thead><tr><th>Key</th><th>Type</th><th>Value</th></tr></thead>
<tbody>
{{range .Items}}<tr><td class="mono">{{.Key}}</td><td class="mono muted">{{.Type}}</td><td><pre>{{.Value}}</pre></td></tr>
{{else}}<tr><td colspan="3" class="muted">No values.</td></tr>
{{end}}</tbody></table></div>
{{end}}
{{template "foot" .}}{{end}}
`
