const app = document.getElementById('app')!;
app.dataset.state = 'signin';
app.textContent = 'callhub';
