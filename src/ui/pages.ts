/** The inspector's pages: server-rendered HTML, no script, one stylesheet; every value escaped. */
import type { ExpiringItem, ExpiryState, RepositoryDetail, RepositoryHistory, RepositoryList, RoleDiff, RoleExpiryInfo } from '../service/inspector.js';
import type { AuditRecord } from '../service/audit-query.js';
import { gunPath, html, query, type Html } from './html.js';

export interface PageContext {
  /** The logged-in user, when logins are on. */
  user?: string | undefined;
  nowMs: number;
}

type Nav = 'repositories' | 'expiring' | 'audit' | 'none';

const when = (iso: string) => iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC');

function relative(iso: string, nowMs: number): string {
  const d = Date.parse(iso) - nowMs;
  const days = Math.round(Math.abs(d) / 86_400_000);
  const span = days >= 1 ? `${days} day${days === 1 ? '' : 's'}` : `${Math.max(1, Math.round(Math.abs(d) / 3_600_000))} h`;
  return d < 0 ? `${span} ago` : `in ${span}`;
}

const STATE_LABEL: Record<ExpiryState, string> = { expired: 'expired', warning: 'expires soon', fine: 'fine' };
const stateBadge = (state: ExpiryState) => html`<span class="state ${state}">${STATE_LABEL[state]}</span>`;

export function layout(title: string, nav: Nav, page: PageContext, body: Html): Html {
  const link = (to: Nav, href: string, label: string) => html`<a href="${href}" ${to === nav ? html` class="current"` : ''}>${label}</a>`;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title} · Signet</title>
        <link rel="stylesheet" href="/ui/static/signet.css" />
      </head>
      <body>
        <header>
          <span class="brand">Signet</span>
          <nav>
            ${nav === 'none' ? '' : [link('repositories', '/ui/', 'Repositories'), link('expiring', '/ui/expiring', 'Expiring'), link('audit', '/ui/audit', 'Audit')]}
          </nav>
          ${
            page.user !== undefined
              ? html`<span class="user"
                  >${page.user}
                  <form method="post" action="/ui/logout"><button type="submit">Log out</button></form></span
                >`
              : ''
          }
        </header>
        <main>${body}</main>
      </body>
    </html>`;
}

export interface ListParams {
  q: string;
  sort: 'gun' | 'tags' | 'changed' | 'expiry';
  order: 'asc' | 'desc';
  limit: number;
  offset: number;
}

export function repositoriesPage(page: PageContext, list: RepositoryList, p: ListParams, warningDays: number): Html {
  const sortLink = (sort: ListParams['sort'], label: string, numeric = false) => {
    const order = p.sort === sort ? (p.order === 'asc' ? 'desc' : 'asc') : sort === 'tags' || sort === 'changed' ? 'desc' : 'asc';
    const arrow = p.sort === sort ? (p.order === 'asc' ? ' ▲' : ' ▼') : '';
    return html`<th${numeric ? html` class="num"` : ''}><a href="/ui/${query({ q: p.q, sort, order })}">${label}${arrow}</a></th>`;
  };
  const option = (value: string, label: string, current: string) =>
    html`<option value="${value}" ${value === current ? html` selected` : ''}>${label}</option>`;
  const rows = list.repositories.map(
    (r) =>
      html`<tr class="${r.nearestExpiry?.state ?? ''}">
        <td><a class="mono" href="/ui/repositories/${gunPath(r.gun)}">${r.gun}</a></td>
        <td class="num">${r.signedTags}</td>
        <td>${r.signers.map((s) => html`<span class="pill">${s}</span>`)}</td>
        <td title="${r.lastChange}">${when(r.lastChange)}</td>
        <td>
          ${r.nearestExpiry ? html`${stateBadge(r.nearestExpiry.state)} <span class="mono">${r.nearestExpiry.role}</span> <span class="muted" title="${r.nearestExpiry.expires}">${relative(r.nearestExpiry.expires, page.nowMs)}</span>` : html`<span class="muted">none</span>`}
        </td>
      </tr>`,
  );
  const base = { q: p.q, sort: p.sort, order: p.order, limit: p.limit === 50 ? undefined : p.limit };
  return layout(
    'Repositories',
    'repositories',
    page,
    html`<h1>Repositories</h1>
      <form class="filters" method="get" action="/ui/">
        <label>Search<input type="search" name="q" value="${p.q}" placeholder="part of a name" maxlength="255" /></label>
        <label
          >Sort by<select name="sort">
            ${[option('gun', 'name', p.sort), option('tags', 'signed tags', p.sort), option('changed', 'last change', p.sort), option('expiry', 'nearest expiry', p.sort)]}
          </select></label
        >
        <label
          >Order<select name="order">
            ${[option('asc', 'ascending', p.order), option('desc', 'descending', p.order)]}
          </select></label
        >
        <button type="submit">Show</button>
      </form>
      <p class="muted">
        ${list.total} repositor${list.total === 1 ? 'y' : 'ies'}${p.q ? html` matching “${p.q}”` : ''}. Nearest expiry: of root, targets, delegations, or a
        snapshot whose key the owner holds; the warning window is ${warningDays} days.
      </p>
      <table id="repositories">
        <thead>
          <tr>
            ${[sortLink('gun', 'Repository'), sortLink('tags', 'Signed tags', true), html`<th>Signers</th>`, sortLink('changed', 'Last change'), sortLink('expiry', 'Nearest expiry')]}
          </tr>
        </thead>
        <tbody>
          ${
            rows.length
              ? rows
              : html`<tr>
                  <td colspan="5" class="muted">No repository.</td>
                </tr>`
          }
        </tbody>
      </table>
      <div class="pager">
        ${p.offset > 0 ? html`<a href="/ui/${query({ ...base, offset: Math.max(0, p.offset - p.limit) || undefined })}">← previous</a>` : ''}${list.next !== null ? html`<a href="/ui/${query({ ...base, offset: list.next })}">next →</a>` : ''}
      </div>`,
  );
}

function timeline(roles: RoleExpiryInfo[], nowMs: number): Html {
  const horizon = Math.max(...roles.map((r) => Date.parse(r.expires) - nowMs), 86_400_000);
  return html`<table id="roles">
    <thead>
      <tr>
        <th>Role</th>
        <th class="num">Version</th>
        <th>Signed by</th>
        <th>Expires</th>
        <th>State</th>
        <th>Timeline (now → ${when(new Date(nowMs + horizon).toISOString())})</th>
      </tr>
    </thead>
    <tbody>
      ${roles.map((r) => {
        const left = Date.parse(r.expires) - nowMs;
        const width = left <= 0 ? 0 : Math.max(1, Math.round((left / horizon) * 20));
        return html`<tr class="${r.state}">
          <td class="mono">${r.role}</td>
          <td class="num">${r.version}</td>
          <td>${r.signedBy === 'server' ? 'Signet (re-signed automatically)' : 'owner'}</td>
          <td title="${r.expires}">${when(r.expires)} <span class="muted">${relative(r.expires, nowMs)}</span></td>
          <td>${stateBadge(r.state)}</td>
          <td>
            <div class="timeline"><div class="bar ${r.state} w${width}"></div></div>
          </td>
        </tr>`;
      })}
    </tbody>
  </table>`;
}

const keyList = (keys: { id: string; type: string }[]) => keys.map((k) => html`<div><code>${k.id}</code> <span class="muted">${k.type}</span></div>`);

export interface DiffForm {
  role?: string | undefined;
  from?: number | undefined;
  to?: number | undefined;
}

export function repositoryPage(
  page: PageContext,
  d: RepositoryDetail,
  h: RepositoryHistory,
  diff: RoleDiff | null,
  form: DiffForm,
  diffError: string | null,
): Html {
  const custom = (v: unknown) => (v === undefined ? '' : html`<code>${JSON.stringify(v)}</code>`);
  const roleNames = [...new Set(h.versions.map((v) => v.role))].sort();
  const path = `/ui/repositories/${gunPath(d.gun)}`;
  return layout(
    d.gun,
    'repositories',
    page,
    html`<h1 class="mono">${d.gun}</h1>
      <section class="card">
        <h2>Expiry of every role</h2>
        ${timeline(d.roles, page.nowMs)}
      </section>
      <section class="card">
        <h2>Signed tags (${d.signedTagsTotal})</h2>
        <table id="tags">
          <thead>
            <tr>
              <th>Signed tag</th>
              <th>Digest</th>
              <th class="num">Size</th>
              <th>Signers</th>
              <th>Custom</th>
            </tr>
          </thead>
          <tbody>
            ${
              d.signedTags.length
                ? d.signedTags.map(
                    (t) =>
                      html`<tr>
                        <td class="mono">${t.tag}</td>
                        <td><code>${t.digest ?? ''}</code></td>
                        <td class="num">${t.size}</td>
                        <td>${t.signers.map((s) => html`<span class="pill">${s}</span>`)}</td>
                        <td>${custom(t.custom)}</td>
                      </tr>`,
                  )
                : html`<tr>
                    <td colspan="5" class="muted">No signed tag.</td>
                  </tr>`
            }
          </tbody>
        </table>
        ${d.signedTagsTotal > d.signedTags.length ? html`<p class="muted">The first ${d.signedTags.length} are shown.</p>` : ''}
      </section>
      <section class="card">
        <h2>Keys</h2>
        <table id="keys">
          <tbody>
            <tr>
              <th>Root keys (threshold ${d.rootThreshold})</th>
              <td>${keyList(d.rootKeys)}</td>
            </tr>
            <tr>
              <th>Targets keys (threshold ${d.targetsThreshold})</th>
              <td>${keyList(d.targetsKeys)}</td>
            </tr>
            <tr>
              <th>Server-held keys</th>
              <td>
                ${d.serverKeys.length ? d.serverKeys.map((k) => html`<div><code>${k.id}</code> <span class="muted">${k.role}, ${k.type}, created ${when(k.created)}${k.lastUsed ? '' : ', pending'}</span></div>`) : html`<span class="muted">none</span>`}
              </td>
            </tr>
          </tbody>
        </table>
      </section>
      <section class="card">
        <h2>Delegations</h2>
        <table id="delegations">
          <thead>
            <tr>
              <th>Role</th>
              <th>Signer</th>
              <th class="num">Threshold</th>
              <th>Keys</th>
              <th>Paths</th>
            </tr>
          </thead>
          <tbody>
            ${
              d.delegations.length
                ? d.delegations.map(
                    (x) =>
                      html`<tr>
                        <td class="mono">${x.role}</td>
                        <td>${x.name}</td>
                        <td class="num">${x.threshold}</td>
                        <td>${keyList(x.keys)}</td>
                        <td>
                          ${
                            x.paths ? x.paths.map((p) => html`<span class="pill mono">${p === '' ? '(all)' : p}</span>`) : ''
                          }${x.pathHashPrefixes ? x.pathHashPrefixes.map((p) => html`<span class="pill mono">hash ${p}…</span>`) : ''}
                        </td>
                      </tr>`,
                  )
                : html`<tr>
                    <td colspan="5" class="muted">No delegation.</td>
                  </tr>`
            }
          </tbody>
        </table>
      </section>
      <section class="card">
        <h2>Compare two versions of a role</h2>
        <form class="filters" method="get" action="${path}">
          <label
            >Role<select name="role">
              ${roleNames.map((r) => html`<option value="${r}" ${r === form.role ? html` selected` : ''}>${r}</option>`)}
            </select></label
          >
          <label>From version<input type="number" name="from" min="1" value="${form.from ?? ''}" required /></label>
          <label>To version<input type="number" name="to" min="1" value="${form.to ?? ''}" required /></label>
          <button type="submit">Compare</button>
        </form>
        ${diffError ? html`<p class="error">${diffError}</p>` : ''} ${diff ? diffView(diff) : ''}
      </section>
      <section class="card">
        <h2>History</h2>
        <table id="history">
          <thead>
            <tr>
              <th>Stored</th>
              <th>Role</th>
              <th class="num">Version</th>
              <th class="num">Bytes</th>
              <th>Published by</th>
              <th>Action</th>
              <th>SHA-256</th>
            </tr>
          </thead>
          <tbody>
            ${h.versions.map(
              (v) =>
                html`<tr>
                  <td>${when(v.stored)}</td>
                  <td class="mono">${v.role}</td>
                  <td class="num">${v.version}</td>
                  <td class="num">${v.length}</td>
                  <td>${v.publishedBy ?? html`<span class="muted">unknown</span>`}</td>
                  <td>${v.action ?? ''}</td>
                  <td><code>${v.sha256.slice(0, 16)}…</code></td>
                </tr>`,
            )}
          </tbody>
        </table>
      </section>`,
  );
}

function diffView(d: RoleDiff): Html {
  const sign = { added: '+', removed: '−', changed: '~' } as const;
  return html`<div class="diff" id="diff">
    <p>
      <span class="mono">${d.role}</span> version ${d.from.version} (expires ${when(d.from.expires)}) → version ${d.to.version} (expires ${when(d.to.expires)}):
      ${d.changes.length}${d.truncated ? '+' : ''} change${d.changes.length === 1 ? '' : 's'}
    </p>
    <ul>
      ${d.changes.map(
        (c) => html`<li class="${c.op}">${sign[c.op]} ${c.path}: ${c.op === 'added' ? c.to : c.op === 'removed' ? c.from : html`${c.from} → ${c.to}`}</li>`,
      )}
    </ul>
  </div>`;
}

export const WINDOWS: { seconds: number; label: string }[] = [
  { seconds: 0, label: 'already expired' },
  { seconds: 7 * 86_400, label: '7 days' },
  { seconds: 30 * 86_400, label: '30 days' },
  { seconds: 90 * 86_400, label: '90 days' },
  { seconds: 365 * 86_400, label: '1 year' },
  { seconds: 3 * 365 * 86_400, label: '3 years' },
];

export function expiringPage(page: PageContext, items: ExpiringItem[], within: number, truncated: boolean): Html {
  const windows = WINDOWS.some((w) => w.seconds === within)
    ? WINDOWS
    : [...WINDOWS, { seconds: within, label: `${within} s` }].sort((a, b) => a.seconds - b.seconds);
  return layout(
    'Expiring',
    'expiring',
    page,
    html`<h1>Expiring</h1>
      <form class="filters" method="get" action="/ui/expiring">
        <label
          >Expires within<select name="within">
            ${windows.map((w) => html`<option value="${w.seconds}" ${w.seconds === within ? html` selected` : ''}>${w.label}</option>`)}
          </select></label
        >
        <button type="submit">Show</button>
      </form>
      <p class="muted">
        ${items.length}${truncated ? '+' : ''} role${items.length === 1 ? '' : 's'} to re-sign by their owners (Signet re-signs timestamps, and snapshots whose
        key it holds, itself).
      </p>
      <table id="expiring">
        <thead>
          <tr>
            <th>Repository</th>
            <th>Role</th>
            <th class="num">Version</th>
            <th>Expires</th>
            <th>State</th>
            <th>Re-sign with</th>
          </tr>
        </thead>
        <tbody>
          ${
            items.length
              ? items.map(
                  (i) =>
                    html`<tr class="${i.state}">
                      <td><a class="mono" href="/ui/repositories/${gunPath(i.gun)}">${i.gun}</a></td>
                      <td class="mono">${i.role}</td>
                      <td class="num">${i.version}</td>
                      <td title="${i.expires}">${when(i.expires)} <span class="muted">${relative(i.expires, page.nowMs)}</span></td>
                      <td>${stateBadge(i.state)}</td>
                      <td><code>${i.command}</code></td>
                    </tr>`,
                )
              : html`<tr>
                  <td colspan="6" class="muted">Nothing expires in this window.</td>
                </tr>`
          }
        </tbody>
      </table>`,
  );
}

export interface AuditParams {
  gun: string;
  actor: string;
  action: string;
  since: string;
  until: string;
}

export const AUDIT_ACTIONS = [
  'update',
  'delete',
  'rotate_key',
  'staged-create',
  'staged-sign',
  'staged-publish',
  'staged-cancel',
  'staged-expire',
  'import',
  'rekey',
];

export function auditPage(page: PageContext, records: AuditRecord[], p: AuditParams, error: string | null): Html {
  const detail = (d: unknown) => {
    const s = JSON.stringify(d);
    return s.length > 300 ? `${s.slice(0, 300)}…` : s;
  };
  return layout(
    'Audit',
    'audit',
    page,
    html`<h1>Audit trail</h1>
      <form class="filters" method="get" action="/ui/audit">
        <label>Repository<input name="gun" value="${p.gun}" maxlength="255" /></label>
        <label>Actor<input name="actor" value="${p.actor}" maxlength="255" /></label>
        <label
          >Action<select name="action">
            <option value="">any</option>
            ${AUDIT_ACTIONS.map((a) => html`<option value="${a}" ${a === p.action ? html` selected` : ''}>${a}</option>`)}
          </select></label
        >
        <label>Since (UTC)<input type="datetime-local" name="since" value="${p.since}" step="1" /></label>
        <label>Until (UTC)<input type="datetime-local" name="until" value="${p.until}" step="1" /></label>
        <button type="submit">Filter</button>
      </form>
      ${error ? html`<p class="error">${error}</p>` : ''}
      <p class="muted">${records.length} record${records.length === 1 ? '' : 's'}, newest first.</p>
      <table id="audit">
        <thead>
          <tr>
            <th>Time</th>
            <th>Repository</th>
            <th>Action</th>
            <th>Actor</th>
            <th>Address</th>
            <th>Detail</th>
          </tr>
        </thead>
        <tbody>
          ${
            records.length
              ? records.map(
                  (r) =>
                    html`<tr>
                      <td>${when(r.time)}</td>
                      <td>
                        ${r.gun ? html`<a class="mono" href="/ui/repositories/${gunPath(r.gun)}">${r.gun}</a>` : html`<span class="muted">(store)</span>`}
                      </td>
                      <td>${r.action}</td>
                      <td>${r.subject}</td>
                      <td class="mono">${r.address ?? ''}</td>
                      <td><code>${detail(r.detail)}</code></td>
                    </tr>`,
                )
              : html`<tr>
                  <td colspan="6" class="muted">No record.</td>
                </tr>`
          }
        </tbody>
      </table>`,
  );
}

export function loginPage(error: string | null, username: string): Html {
  return layout(
    'Log in',
    'none',
    { nowMs: 0 },
    html`<form class="login" method="post" action="/ui/login">
      <h1>Log in to Signet</h1>
      <p class="muted">With your registry account, as for <code>docker login</code>.</p>
      ${error ? html`<p class="error">${error}</p>` : ''}
      <label>User name<input name="username" value="${username}" autocomplete="username" required maxlength="255" /></label>
      <label>Password<input type="password" name="password" autocomplete="current-password" required maxlength="1024" /></label>
      <button type="submit">Log in</button>
    </form>`,
  );
}

export function messagePage(page: PageContext, title: string, message: string): Html {
  return layout(
    title,
    'none',
    page,
    html`<h1>${title}</h1>
      <p>${message}</p>
      <p><a href="/ui/">Repositories</a></p>`,
  );
}
