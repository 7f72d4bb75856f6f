// Returns need the network: offline, the page says so and the till keeps selling.
const note = document.getElementById("returns-offline");
function show() { if (note) note.hidden = navigator.onLine; }
addEventListener("online", show);
addEventListener("offline", show);
show();
