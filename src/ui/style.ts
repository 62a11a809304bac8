/** The inspector's one stylesheet, served by Signet at /ui/static/signet.css (no CDN, no inline style). */
const bars = Array.from({ length: 21 }, (_, i) => `.bar.w${i}{width:${i * 5}%}`).join('\n');

export const STYLESHEET = `:root{--fg:#1d2430;--muted:#5b6576;--line:#d9dee7;--bg:#f6f7f9;--card:#fff;--accent:#2456b3;
--expired:#b3261e;--expired-bg:#fde7e5;--warning:#8a5a00;--warning-bg:#fff3d6;--fine:#1e6b35;--fine-bg:#e3f4e8}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;align-items:center;gap:24px;padding:10px 24px;background:#18202e;color:#fff}
header .brand{font-weight:700;font-size:16px;letter-spacing:.3px}
header nav a{color:#cfd8ea;text-decoration:none;margin-right:16px}
header nav a.current{color:#fff;border-bottom:2px solid #7aa2f7}
header .user{margin-left:auto;display:flex;gap:10px;align-items:center;color:#cfd8ea}
header .user button{background:none;border:1px solid #5b6576;color:#cfd8ea;border-radius:4px;padding:2px 8px;cursor:pointer}
main{padding:20px 24px;max-width:1400px}
h1{font-size:20px;margin:0 0 12px}
h1.mono{font-size:18px}
h2{font-size:16px;margin:24px 0 8px}
a{color:var(--accent)}
section.card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:12px 16px;margin-bottom:16px}
table{border-collapse:collapse;width:100%;background:var(--card)}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;color:var(--muted);white-space:nowrap}
th a{color:inherit}
td.num,th.num{text-align:right}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px;word-break:break-all}
.muted{color:var(--muted)}
form.filters{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-end;margin-bottom:14px}
form.filters label{display:flex;flex-direction:column;font-size:12px;color:var(--muted);gap:2px}
input,select{font:inherit;padding:4px 6px;border:1px solid var(--line);border-radius:4px;background:#fff}
button{font:inherit;padding:5px 12px;border:1px solid var(--accent);background:var(--accent);color:#fff;border-radius:4px;cursor:pointer}
.state{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;white-space:nowrap}
.state.expired{color:var(--expired);background:var(--expired-bg)}
.state.warning{color:var(--warning);background:var(--warning-bg)}
.state.fine{color:var(--fine);background:var(--fine-bg)}
tr.expired td:first-child{border-left:4px solid var(--expired)}
tr.warning td:first-child{border-left:4px solid #e0a100}
tr.fine td:first-child{border-left:4px solid #3fa45b}
.timeline{width:100%;min-width:160px;height:10px;background:#edf0f5;border-radius:5px;overflow:hidden}
.bar{height:10px}
.bar.expired{background:var(--expired)}.bar.warning{background:#e0a100}.bar.fine{background:#3fa45b}
${bars}
.pager{display:flex;gap:16px;margin-top:10px}
.diff .added{color:var(--fine)}.diff .removed{color:var(--expired)}.diff .changed{color:var(--warning)}
.diff li{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px;list-style:none;word-break:break-all}
.diff ul{padding-left:0}
.error{color:var(--expired);background:var(--expired-bg);padding:8px 12px;border-radius:4px}
.login{max-width:360px;margin:60px auto;background:var(--card);border:1px solid var(--line);border-radius:6px;padding:20px}
.login label{display:flex;flex-direction:column;margin-bottom:10px;gap:2px;color:var(--muted)}
.pill{display:inline-block;background:#eef2fa;border-radius:10px;padding:0 8px;margin:1px 2px;font-size:12px}
`;
