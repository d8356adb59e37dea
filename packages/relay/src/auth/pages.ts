/**
 * The pages of user access the relay serves itself: the local sign-in form,
 * the 403 that names the app and the account, the sign-out confirmation and
 * the signed-out page. Every value is escaped; pages carry no script.
 */
import { escapeHtml } from '../proxy/pages.ts';

const STYLE = `body{font:16px/1.5 system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}label{display:block;margin:.8rem 0 .2rem}input{width:100%;box-sizing:border-box;padding:.5rem;font:inherit}
button,.button{margin-top:1rem;padding:.5rem 1rem;font:inherit;cursor:pointer;display:inline-block;text-decoration:none;border:1px solid #888;border-radius:4px;color:#222;background:#f3f3f3}
.error{color:#a00;background:#fee;padding:.5rem;border-radius:4px}.notice{background:#eef;padding:.5rem;border-radius:4px}
.meta{color:#666;font-size:.9rem}code{background:#f3f3f3;padding:.1rem .3rem;border-radius:3px}`;

function layout(title: string, body: string, requestId: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body>${body}
<p class="meta">Request id <code>${escapeHtml(requestId)}</code> · Served by Drawbridge.</p></body></html>
`;
}

export interface SignInForm {
  appName: string;
  /** Where the form posts. */
  action: string;
  /** Hidden fields carried through (return-to, handoff state, CSRF token). */
  hidden: Record<string, string>;
  userName?: string;
  error?: string;
  notice?: string;
}

export function signInPage(form: SignInForm, requestId: string): string {
  const hidden = Object.entries(form.hidden)
    .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
    .join('');
  return layout(
    `Sign in · ${form.appName}`,
    `<h1>Sign in to ${escapeHtml(form.appName)}</h1>
${form.notice ? `<p class="notice" role="status">${escapeHtml(form.notice)}</p>` : ''}
${form.error ? `<p class="error" role="alert">${escapeHtml(form.error)}</p>` : ''}
<form method="post" action="${escapeHtml(form.action)}">${hidden}
<label for="username">User name</label><input id="username" name="username" autocomplete="username" autofocus required value="${escapeHtml(form.userName ?? '')}">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form>`,
    requestId,
  );
}

export function forbiddenPage(appName: string, account: string, signOutUrl: string, requestId: string): string {
  return layout(
    `Access denied · ${appName}`,
    `<h1>You do not have access to ${escapeHtml(appName)}</h1>
<p>You are signed in as <strong>${escapeHtml(account)}</strong>, and this account is not assigned to <strong>${escapeHtml(appName)}</strong>.
Ask your administrator to assign it, or sign in with another account.</p>
<p><a class="button" href="${escapeHtml(signOutUrl)}">Sign out</a></p>
<p class="meta">Error <code>ERR_ACCESS_DENIED</code> · HTTP 403</p>`,
    requestId,
  );
}

/** What the signed-out page adds when sign-out did not reach the provider; `code` when that was an error. */
export interface SignedOutNote {
  text: string;
  code?: string;
}

export function signedOutPage(appName: string | undefined, signInUrl: string | undefined, requestId: string, note?: SignedOutNote): string {
  return layout(
    'Signed out',
    `<h1>You have signed out${appName ? ` of ${escapeHtml(appName)}` : ''}</h1>
<p>Your session has ended and its open connections were closed.</p>
${note ? `<p class="${note.code ? 'error' : 'notice'}" role="${note.code ? 'alert' : 'status'}">${escapeHtml(note.text)}</p>` : ''}${note?.code ? `<p class="meta">Error <code>${escapeHtml(note.code)}</code></p>` : ''}
${signInUrl ? `<p><a class="button" href="${escapeHtml(signInUrl)}">Sign in again</a></p>` : ''}`,
    requestId,
  );
}

/**
 * The question a sign-out that is not the user's own click here (another
 * site's or app's link or form, an embedded image) gets instead of ending the
 * session: its button posts to `action` from this page, so the sign-out that
 * follows is same-origin and the user's own. `account` names who is signed in
 * when the request showed it (a cross-site POST carries no session cookie).
 */
export function signOutConfirmPage(appName: string | undefined, account: string | undefined, action: string, stayUrl: string | undefined, requestId: string): string {
  return layout(
    appName ? `Sign out of ${appName}?` : 'Sign out?',
    `<h1>Sign out${appName ? ` of ${escapeHtml(appName)}` : ''}?</h1>
${account ? `<p>You are signed in as <strong>${escapeHtml(account)}</strong>.</p>` : ''}
<p>This sign-out did not come from your own click here (it came from another site or application, or from something embedded in a page), so it waits for you to confirm it.</p>
<form method="post" action="${escapeHtml(action)}"><button type="submit">Sign out</button>
${stayUrl ? `<a class="button" href="${escapeHtml(stayUrl)}">Stay signed in</a>` : ''}</form>`,
    requestId,
  );
}

/** A sign-in that could not complete: what went wrong and a way back. */
export function signInErrorPage(code: string, detail: string, retryUrl: string | undefined, requestId: string): string {
  return layout(
    'Sign-in failed',
    `<h1>Sign-in did not complete</h1><p>${escapeHtml(detail)}</p>
${retryUrl ? `<p><a class="button" href="${escapeHtml(retryUrl)}">Try again</a></p>` : ''}
<p class="meta">Error <code>${escapeHtml(code)}</code></p>`,
    requestId,
  );
}

/** The central sign-in host's root: nothing to do here but open an app. */
export function homePage(requestId: string): string {
  return layout('Drawbridge sign-in', '<h1>Drawbridge sign-in</h1><p>Open the application you want to use; it brings you here when you need to sign in.</p>', requestId);
}
