// Sign-in for the pages (docs/security.md, "Hub web"), shared by the floor, phone and
// statistics pages.
//
//   const auth = await signedIn({ title: "Floor", want: "associate" });
//   fetch(url, { method: "POST", headers: withCsrf({ "Content-Type": "application/json" }), ... });
//
// Demo mode (authentication off): resolves at once and shows the demo banner. Otherwise the
// hub keeps the session in an HttpOnly cookie the page cannot read; the page keeps only the
// session's CSRF token, which it sends as X-Callbell-CSRF on every request that changes
// something (another site cannot know it, so it cannot make this browser act).

const API = "/api/v1";
export const CSRF_HEADER = "X-Callbell-CSRF";
// Roles, lowest first (hub/auth.py).
const ROLES = ["device", "display", "associate", "manager", "admin"];
const DEMO_WORDS = "Demo mode: no sign-in — not secure: anyone on this network can see and act on everything.";

let csrf = null;

export function setCsrf(token) { csrf = token || null; }
export function csrfToken() { return csrf; }

// `headers` plus the CSRF header once signed in.
export function withCsrf(headers = {}) {
  return csrf ? { ...headers, [CSRF_HEADER]: csrf } : headers;
}

// A fetch for the API: sends the CSRF header; a 401 (session ended or expired) reloads the
// page, which then shows its sign-in form.
export async function api(path, init = {}) {
  const r = await fetch(path, { ...init, headers: withCsrf(init.headers || {}) });
  if (r.status === 401 && !path.endsWith("/session")) location.reload();
  return r;
}

export async function sessionOptions() {
  const r = await fetch(`${API}/session`);
  const options = await r.json();
  if (options.csrf) setCsrf(options.csrf);
  return options;
}

export const mayAct = (role, want) => ROLES.indexOf(role) >= ROLES.indexOf(want);

// The demo banner: the page's own #demo-banner if it has one, else one made here.
export function showDemoBanner(words = null) {
  let banner = document.getElementById("demo-banner");
  if (!banner) {
    banner = document.createElement("div");
    banner.id = "demo-banner";
    banner.className = "banner banner-demo";
    banner.textContent = DEMO_WORDS;
    document.body.prepend(banner);
  }
  if (words) banner.textContent = words;
  banner.hidden = false;
  banner.setAttribute("role", "alert");
}

export async function signOut() {
  await fetch(`${API}/session`, { method: "DELETE" });
  setCsrf(null);
}

// Resolves with {demo, who} once the page may use the API: at once in demo mode (with the
// banner) or with a live session of at least `want`; otherwise after the sign-in form.
// `display`: a floor screen, signed in with a display token instead of a person.
export async function signedIn({ title = "Callbell", want = "associate", display = false } = {}) {
  const options = await sessionOptions();
  if (options.demo) {
    showDemoBanner();
    return { demo: true, who: null };
  }
  let who = options.signed_in;
  if (!who || !mayAct(who.role, want)) {
    who = display ? await displayForm(title) : await signInForm(options, title, want, who);
  }
  if (!display) showSignedIn(who);
  return { demo: false, who };
}

// A floor screen's one-time sign-in: the display token made with
// `callbell token create --role display --name floor-screen` (hub/api/routes/display.py).
function displayForm(title) {
  document.body.dataset.auth = "signing-in";
  const section = document.createElement("section");
  section.className = "auth-sign-in";
  section.setAttribute("aria-labelledby", "auth-title");
  section.innerHTML = `
    <h1 id="auth-title"><img src="/static/icon.svg" alt="" width="28" height="28"> Floor screen — <span></span></h1>
    <form id="auth-form">
      <label>Display token <input id="auth-secret" type="password" autocomplete="off" required></label>
      <button type="submit" id="auth-submit">Show the floor</button>
      <p class="auth-hint">Made once with <code>callbell token create --role display --name floor-screen</code>.
        This screen then stays signed in; revoke the token to sign it out.</p>
      <p id="auth-error" class="auth-error" role="alert" hidden></p>
    </form>`;
  section.querySelector("h1 span").textContent = title;
  document.body.prepend(section);
  const error = section.querySelector("#auth-error");
  return new Promise((resolve) => {
    section.querySelector("#auth-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      try {
        const r = await fetch(`${API}/display/session`, {
          method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ token: section.querySelector("#auth-secret").value }),
        });
        const answer = await r.json();
        if (!r.ok) throw new Error(answer.error ? answer.error.message : r.statusText);
        setCsrf(answer.csrf);
        section.remove();
        delete document.body.dataset.auth;
        resolve({ associate: answer.name, name: answer.name, role: answer.role });
      } catch (e) {
        section.querySelector("#auth-secret").value = "";
        error.textContent = e instanceof TypeError ? "No connection to the hub." : e.message;
        error.hidden = false;
      }
    });
  });
}

function signInForm(options, title, want, current) {
  document.body.dataset.auth = "signing-in";
  const section = document.createElement("section");
  section.className = "auth-sign-in";
  section.setAttribute("aria-labelledby", "auth-title");
  section.innerHTML = `
    <h1 id="auth-title"><img src="/static/icon.svg" alt="" width="28" height="28"> Sign in — <span></span></h1>
    <form id="auth-form">
      <label>Name <select id="auth-who" required></select></label>
      <label>Password or PIN <input id="auth-secret" type="password" autocomplete="current-password" required></label>
      <button type="submit" id="auth-submit">Sign in</button>
      <p id="auth-hint" class="auth-hint"></p>
      <p id="auth-error" class="auth-error" role="alert" hidden></p>
    </form>`;
  section.querySelector("h1 span").textContent = title;
  const select = section.querySelector("#auth-who");
  select.replaceChildren(...options.associates.map((a) => new Option(a.name, a.id)));
  if (current) select.value = current.associate;
  section.querySelector("#auth-hint").textContent = want === "associate"
    ? "Associates: your PIN. Managers: your password."
    : `This page needs a ${want}: sign in with your password (a PIN opens the floor only).`;
  document.body.prepend(section);
  const error = section.querySelector("#auth-error");
  return new Promise((resolve) => {
    section.querySelector("#auth-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      const secret = section.querySelector("#auth-secret").value;
      // A PIN is 4-8 digits; a password at least 10 characters (hub/auth.py).
      const body = /^[0-9]{4,8}$/.test(secret) ? { associate: select.value, pin: secret }
        : { associate: select.value, password: secret };
      try {
        const r = await fetch(`${API}/session`, {
          method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
        });
        const answer = await r.json();
        if (!r.ok) throw new Error(answer.error ? answer.error.message : r.statusText);
        if (!mayAct(answer.role, want)) throw new Error(`${answer.associate.name} signed in as ${answer.role}; this page needs ${want}`);
        setCsrf(answer.csrf);
        section.remove();
        delete document.body.dataset.auth;
        resolve({ associate: answer.associate.id, name: answer.associate.name, role: answer.role });
      } catch (e) {
        section.querySelector("#auth-secret").value = "";
        error.textContent = e.message;
        error.hidden = false;
      }
    });
  });
}

// "Signed in as …" with a sign-out button, at the top of the page.
function showSignedIn(who) {
  const bar = document.createElement("div");
  bar.className = "auth-bar";
  const words = document.createElement("span");
  words.id = "auth-who-am-i";
  words.textContent = `Signed in as ${who.name || who.associate} (${who.role})`;
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = "Sign out";
  button.addEventListener("click", async () => { await signOut(); location.reload(); });
  bar.append(words, " ", button);
  document.body.prepend(bar);
}
