/** The inspector's HTML building blocks: escaping, links to repositories, the session cookie. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { escapeHtml, gunPath, html, query, raw } from '../../src/ui/html.js';
import { cookieValue, sessionCookie } from '../../src/ui/session.js';

test('every interpolated value is escaped, markup built here is not', () => {
  assert.equal(escapeHtml(`<a href="x" onclick='y'>&\`</a>`), '&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&#96;&lt;/a&gt;');
  const gun = 'r/x"><svg/onload=alert(1)>';
  assert.equal(
    html`<td title="${gun}">${gun}</td>`.value,
    '<td title="r/x&quot;&gt;&lt;svg/onload=alert(1)&gt;">r/x&quot;&gt;&lt;svg/onload=alert(1)&gt;</td>',
  );
  assert.equal(html`<p>${[html`<b>${'<i>'}</b>`, raw('<br>'), null, undefined, false, 3]}</p>`.value, '<p><b>&lt;i&gt;</b><br>3</p>');
});

test('repository links keep the slashes and encode the rest', () => {
  assert.equal(gunPath('localhost:5000/team/app'), 'localhost%3A5000/team/app');
  assert.equal(gunPath('r/x"><svg?a#b'), 'r/x%22%3E%3Csvg%3Fa%23b');
  assert.equal(query({ q: 'a&b', sort: 'gun', empty: '', none: undefined }), '?q=a%26b&sort=gun');
  assert.equal(query({}), '');
});

test('the session cookie: HttpOnly, SameSite=Strict, Secure over TLS; only well-formed identifiers are read back', () => {
  assert.equal(sessionCookie('a'.repeat(43), 60.9, true), `signet_session=${'a'.repeat(43)}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=60; Secure`);
  assert.doesNotMatch(sessionCookie('a'.repeat(43), 60, false), /Secure/);
  assert.equal(cookieValue(`other=1; signet_session=${'b'.repeat(43)}`, 'signet_session'), 'b'.repeat(43));
  assert.equal(cookieValue('signet_session=short', 'signet_session'), null);
  assert.equal(cookieValue('signet_session=<script>aaaaaaaaaaaaaaaaaaaaaaaa', 'signet_session'), null);
  assert.equal(cookieValue(undefined, 'signet_session'), null);
});
