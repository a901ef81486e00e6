// Clusters in the console, as progressive enhancement: without this file every field shows (the server
// reads those of the kind chosen) and "Sign in" opens a page of its own. With it:
// - "+ Cluster" shows the fields of the kind chosen; the others are hidden and not sent; how run-svc
//   reaches a Slurm or LSF cluster (over SSH, on the login node itself, or through a slurmrestd URL)
//   shows only the fields that apply, and the Credential select offers SSH keys or tokens to match;
// - the run form's Target Cluster shows Time limit and Account for Slurm and LSF clusters, says under
//   the cluster whether it needs the user's own login, and opens the login popup when it is missing;
// - the login popup asks for what the cluster's login page asks (an SSH key, or a slurmrestd cluster's
//   JWT), posts the login and goes on with the page it was opened from.
(function () {
  "use strict";

  function onReady(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }

  // Show (and send) only the elements whose `attribute` names `kind` among its space-separated kinds.
  function showKinds(attribute, kind) {
    document.querySelectorAll("[" + attribute + "]").forEach(function (el) {
      var on = el.getAttribute(attribute).split(" ").indexOf(kind) >= 0;
      el.hidden = !on;
      el.querySelectorAll("input, select, textarea").forEach(function (input) { input.disabled = !on; });
    });
  }

  function kindPicker() {
    var picker = document.querySelector("[data-cluster-kind-picker]");
    if (!picker) return;
    var onNode = document.querySelector("[data-on-login-node]");
    var restUrl = document.querySelector("[data-slurmrestd-url]");
    var credential = document.getElementById("f-cluster.credential");
    // How run-svc reaches the cluster: "ssh", "node" (run-svc on the login node) or "rest" (slurmrestd).
    // Read once the kind's fields are on, so that another kind's leftovers do not count.
    function reach() {
      if (restUrl && !restUrl.disabled && restUrl.value.trim() !== "") return "rest";
      if (onNode && !onNode.disabled && onNode.checked) return "node";
      return "ssh";
    }
    function show() {
      showKinds("data-kinds", picker.value);
      var how = reach();
      document.querySelectorAll("[data-reach]").forEach(function (el) {
        var on = el.getAttribute("data-reach").split(" ").indexOf(how) >= 0;
        el.hidden = !on;
        if (el.tagName === "OPTGROUP") el.disabled = !on;
        else if (!on) el.querySelectorAll("input, select, textarea").forEach(function (input) { input.disabled = true; });
      });
      // An SSH key chosen before a slurmrestd URL was typed (or the other way) no longer applies.
      var picked = credential && credential.options[credential.selectedIndex];
      if (picked && picked.closest("optgroup[disabled]")) credential.value = "";
    }
    picker.addEventListener("change", show);
    if (onNode) onNode.addEventListener("change", show);
    if (restUrl) restUrl.addEventListener("input", show);
    show();
  }

  // --- the login popup -----------------------------------------------------------------------------
  var popup = null;

  // Open the popup for cluster `name`; `done(user)` runs once the login is saved. False when the page
  // has no popup (the caller then follows its link to the login page).
  function askLogin(name, host, done) {
    if (!popup) return false;
    popup.open(name, host, done);
    return true;
  }

  function loginPopup() {
    var box = document.getElementById("cluster-login");
    if (!box || typeof box.showModal !== "function") return;
    var form = box.querySelector("form");
    var about = box.querySelector("[data-cluster-about]");
    var pristine = form.innerHTML;
    var pristineAbout = about.innerHTML;
    var done = null;
    // The fields of the cluster's own login page (an SSH key, or a JWT for slurmrestd), with a Cancel
    // button for its link back.
    function adopt(page) {
      var answer = page && page.getElementById("cluster-login-form");
      if (!answer) return false;
      form.innerHTML = answer.innerHTML;
      form.querySelectorAll(".actions a").forEach(function (a) { a.remove(); });
      form.querySelector(".actions").appendChild(cancelButton());
      return true;
    }
    box.addEventListener("click", function (event) {
      if (event.target.closest("[data-close]")) box.close();
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var user = form.elements["credential.username"].value.trim();
      form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin" })
        .then(function (r) {
          if (r.redirected && new URL(r.url).pathname === "/login") { window.location.href = r.url; return; }
          if (r.ok) {  // saved: the server sent us on to the cluster's page
            box.close();
            if (done) done(user);
            return;
          }
          // Refused: the login page's own form, with the server's words beside the field it names.
          return r.text().then(function (html) {
            var page = new DOMParser().parseFromString(html, "text/html");
            if (!adopt(page)) {
              form.innerHTML = pristine;
              summary(form, (page.getElementById("page-error") || {}).textContent || "HTTP " + r.status);
            }
            var invalid = form.querySelector("[aria-invalid=true]");
            if (invalid) invalid.focus();
          });
        })
        .catch(function () {
          form.innerHTML = pristine;
          summary(form, "The platform could not be reached; try again.");
        })
        .finally(function () { form.querySelectorAll("button").forEach(function (b) { b.disabled = false; }); });
    });
    popup = {
      // Opens once the cluster's login page said what it asks for; the SSH key fields if it cannot tell.
      open: function (name, host, then) {
        var url = "/clusters/" + encodeURIComponent(name) + "/login";
        form.action = url;
        box.querySelector("[data-cluster-name]").textContent = name;
        done = then;
        fetch(url, { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.text() : ""; })
          .then(function (html) {
            var page = html ? new DOMParser().parseFromString(html, "text/html") : null;
            var said = page && page.getElementById("cluster-login-about");
            if (!adopt(page)) form.innerHTML = pristine;
            about.innerHTML = said ? said.innerHTML : pristineAbout;
            if (!said) about.querySelector("[data-cluster-host]").textContent = host;
          })
          .catch(function () {
            form.innerHTML = pristine;
            about.innerHTML = pristineAbout;
            about.querySelector("[data-cluster-host]").textContent = host;
          })
          .finally(function () { if (!box.open) box.showModal(); });
      },
    };
    document.querySelectorAll("a[data-cluster-login]").forEach(function (link) {
      link.addEventListener("click", function (event) {
        var shown = askLogin(link.dataset.clusterLogin, link.dataset.host, function () { window.location.reload(); });
        if (shown) event.preventDefault();
      });
    });
  }

  function summary(form, text) {
    var error = document.createElement("p");
    error.className = "error summary";
    error.id = "form-error";
    error.setAttribute("role", "alert");
    error.textContent = text;
    form.prepend(error);
  }

  function cancelButton() {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "plain";
    button.dataset.close = "";
    button.textContent = "Cancel";
    return button;
  }

  // --- the run form's Target Cluster ---------------------------------------------------------------
  function targetCluster() {
    var select = document.getElementById("f-cluster");
    var note = document.getElementById("cluster-note");
    if (!select || !note) return;
    function chosen() { return select.options[select.selectedIndex]; }
    function ask(option) {
      return askLogin(option.value, option.dataset.host, function (user) {
        option.dataset.login = "given";
        option.dataset.user = user;
        settled();
        describe();
      });
    }
    // The server's refusal of the cluster (no login) no longer holds once the user signed in.
    function settled() {
      if (select.getAttribute("aria-invalid") !== "true") return;
      select.removeAttribute("aria-invalid");
      select.closest(".field").classList.remove("invalid");
      ["f-cluster-error", "form-error"].forEach(function (id) {
        var shown = document.getElementById(id);
        if (shown) shown.remove();
      });
    }
    // Under the cluster's name: whether it needs the user's own login, and whether they gave it.
    function describe() {
      var option = chosen();
      note.textContent = "";
      if (option.dataset.login === "given") {
        note.textContent = option.value + " needs your own login: signed in as " + option.dataset.user + ".";
      } else if (option.dataset.login === "needed") {
        note.append(option.value + " needs your own login: ");
        var link = document.createElement("a");
        var name = encodeURIComponent(option.value);
        link.href = "/clusters/" + name + "/login?next=" + encodeURIComponent("/runs/new?cluster=" + name);
        link.id = "cluster-sign-in";
        link.textContent = "sign in";
        link.addEventListener("click", function (event) { if (ask(option)) event.preventDefault(); });
        note.append(link, ".");
      }
    }
    function change(asking) {
      var option = chosen();
      showKinds("data-cluster-kinds", option.dataset.kind || "local");
      describe();
      if (asking && option.dataset.login === "needed") ask(option);
    }
    select.addEventListener("change", function () { change(true); });
    change(false);
  }

  onReady(function () { kindPicker(); loginPopup(); targetCluster(); });
})();
