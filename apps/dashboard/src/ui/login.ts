// The sign-in form: POST /login sets an HttpOnly session cookie (the page never keeps the token).
const form = document.getElementById('login') as HTMLFormElement;
const err = document.getElementById('err')!;
form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const token = (form.elements.namedItem('token') as HTMLInputElement).value;
  void fetch('/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) }).then(async (r) => {
    if (r.ok) location.href = '/';
    else err.textContent = ((await r.json()) as { message?: string }).message ?? `HTTP ${r.status}`;
  });
});
