// The upload page: metadata to POST /api/v1/uploads/, then the file as the raw body of a PUT, so the
// browser streams it exactly like `curl -T`. XMLHttpRequest (not fetch) because only it reports
// upload progress. A connection that breaks mid-file is resumed as `glint upload` does: HEAD tells
// the byte Glint holds (Upload-Offset) and a PATCH sends the file from there. While the bytes
// travel and afterwards, the job's targets are polled and shown.
(function () {
  "use strict";

  var BREAKS_ALLOWED = 5; // broken connections before the page gives up
  var RESUME_WAIT_MS = 2000; // between a break and the next try
  var RESUME_PATIENCE_MS = 120000; // how long Glint may take to let the upload go on (a restart)

  function csrfToken(form) {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function properties(text) {
    var result = {};
    text.split("\n").forEach(function (line) {
      var at = line.indexOf("=");
      if (at > 0) {
        result[line.slice(0, at).trim()] = line.slice(at + 1).trim();
      }
    });
    return result;
  }

  function metadata(form, file) {
    var data = {
      group: Number(form.dataset.group),
      name: form.elements.name.value.trim() || (file ? file.name : ""),
      targets: Array.prototype.map.call(form.querySelectorAll("input[name=targets]:checked"), function (box) {
        return box.value;
      }),
      container_format: form.elements.container_format.value,
      min_disk: Number(form.elements.min_disk.value || 0),
      min_ram: Number(form.elements.min_ram.value || 0),
      visibility: form.elements.visibility.value,
      conflict_policy: form.elements.conflict_policy.value,
      properties: properties(form.elements.properties.value),
    };
    if (form.elements.disk_format.value) { data.disk_format = form.elements.disk_format.value; }
    if (form.elements.checksum.value.trim()) { data.checksum = form.elements.checksum.value.trim(); }
    if (form.elements.checksum_url.value.trim()) { data.checksum_url = form.elements.checksum_url.value.trim(); }
    if (file) {
      data.size = file.size;
    } else {
      data.url = form.elements.url.value.trim();
    }
    return data;
  }

  function request(method, url, token, body, onProgress, headers) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.setRequestHeader("X-CSRFToken", token);
      xhr.setRequestHeader("Accept", "application/json");
      Object.keys(headers || {}).forEach(function (name) { xhr.setRequestHeader(name, headers[name]); });
      if (onProgress) {
        xhr.upload.addEventListener("progress", onProgress);
      }
      xhr.addEventListener("load", function () {
        var data = null;
        try { data = JSON.parse(xhr.responseText); } catch (e) { data = {detail: xhr.responseText}; }
        resolve({status: xhr.status, data: data, offset: xhr.getResponseHeader("Upload-Offset")});
      });
      xhr.addEventListener("error", function () { reject(new Error("the connection to Glint broke")); });
      xhr.addEventListener("abort", function () { reject(new Error("cancelled")); });
      if (body instanceof Blob) {
        xhr.setRequestHeader("Content-Type", "application/octet-stream");
        xhr.send(body);
      } else if (body) {
        xhr.setRequestHeader("Content-Type", "application/json");
        xhr.send(JSON.stringify(body));
      } else {
        xhr.send();
      }
    });
  }

  // An error for a reply Glint refused (4xx: the input is wrong) or failed on (5xx).
  function refusal(reply) {
    var error = new Error(reason(reply.data));
    error.refused = reply.status >= 400 && reply.status < 500;
    return error;
  }

  function reason(data) {
    if (!data) { return "no reason given"; }
    if (data.detail) { return data.detail; }
    return Object.keys(data).map(function (key) { return key + ": " + data[key]; }).join("; ");
  }

  function later(ms) {
    return new Promise(function (resolve) { window.setTimeout(resolve, ms); });
  }

  // PUT the file to `url`; after a broken connection, PATCH the rest from the byte Glint holds.
  // onProgress(bytes sent of the whole file); onResume(offset) before each resumed send.
  function sendResuming(url, token, file, onProgress, onResume) {
    var breaks = 0;
    var waitingSince = null;

    function send(offset) {
      return request(
        offset ? "PATCH" : "PUT",
        url,
        token,
        offset ? file.slice(offset) : file,
        function (event) { onProgress(offset + event.loaded); },
        offset ? {"Upload-Offset": String(offset)} : null
      ).then(function (reply) {
        var code = reply.data && reply.data.code;
        if (reply.status === 409 && (code === "busy" || code === "offset_mismatch")) {
          return resume(code); // Glint has not noticed the break yet, or holds other bytes
        }
        if (reply.data && reply.data.state === "interrupted") {
          // Glint saw the body break off before this browser did, and its answer got through.
          return broke("Glint saw the upload break off");
        }
        return reply;
      }, function (error) {
        return broke(error.message);
      });
    }

    function broke(why) {
      breaks += 1;
      if (breaks >= BREAKS_ALLOWED) {
        throw new Error("the upload broke off " + breaks + " times (" + why +
          "); Glint keeps what arrived for a while: cancel the upload, or resume it with glint upload --resume");
      }
      return resume(why);
    }

    // The patience counts from the first break, for every kind of wait (as glint upload's).
    function waitOrGiveUp(reason) {
      waitingSince = waitingSince || Date.now();
      if (Date.now() - waitingSince > RESUME_PATIENCE_MS) {
        throw new Error("Glint did not let the upload resume in time (" + reason + ")");
      }
      return later(RESUME_WAIT_MS);
    }

    // Glint has not noticed the break yet (409 busy) or answers again only after a restart.
    function resume(reason) {
      return waitOrGiveUp(reason).then(heldOffset).then(function (offset) {
        onResume(offset);
        return send(offset);
      });
    }

    // The byte Glint holds the upload up to, asked until it answers (it may be restarting).
    function heldOffset() {
      return request("HEAD", url, token).then(function (reply) {
        if (reply.status === 204 && reply.offset !== null) { return Number(reply.offset); }
        return waitOrGiveUp("HTTP " + reply.status).then(heldOffset);
      }, function (error) {
        return waitOrGiveUp(error.message).then(heldOffset);
      });
    }

    return send(0);
  }

  function show(id, text) {
    var element = document.getElementById(id);
    element.textContent = text;
    element.hidden = false;
  }

  function drawTargets(job) {
    var list = document.getElementById("upload-targets");
    list.textContent = "";
    job.targets.forEach(function (target) {
      var item = document.createElement("li");
      item.className = "target " + target.state;
      item.dataset.repo = target.repo_name;
      var text = target.repo_name + ": " + (target.outcome || target.state);
      if (target.state === "writing" && target.progress !== null) { text += " " + target.progress + "%"; }
      if (target.error) { text += " — " + target.error; }
      item.textContent = text;
      list.appendChild(item);
    });
  }

  function start(form) {
    var file = form.elements.file.files[0] || null;
    var token = csrfToken(form);
    var api = form.dataset.api;
    var state = {upload: null, job: null, finished: false};
    var status = document.getElementById("upload-status");
    var progress = document.getElementById("upload-progress");
    var percent = document.getElementById("upload-percent");
    var cancel = document.getElementById("upload-cancel");
    status.hidden = false;
    cancel.hidden = false;
    document.getElementById("upload-phase").textContent = "Sending";
    document.getElementById("upload-error").hidden = true;
    document.getElementById("upload-done").hidden = true;
    document.getElementById("upload-start").disabled = true;

    // Nothing is left to cancel once the upload has ended, either way.
    function end() {
      state.finished = true;
      cancel.hidden = true;
      document.getElementById("upload-start").disabled = false;
    }

    function fail(error) {
      end();
      document.getElementById("upload-phase").textContent = error.refused ? "Refused" : "Failed";
      show("upload-error", error.message);
    }

    function poll() {
      if (!state.upload) { return; }
      request("GET", api + state.upload.id + "/", token).then(function (reply) {
        var upload = reply.data;
        if (!file && upload.size) {
          progress.value = Math.floor(100 * upload.bytes_received / upload.size);
          percent.textContent = progress.value + "%";
        }
        if (!upload.job) { return null; }
        state.job = upload.job;
        return request("GET", api.replace("uploads/", "jobs/") + upload.job + "/", token);
      }).then(function (reply) {
        if (!reply) { return; }
        var job = reply.data;
        drawTargets(job);
        var live = job.state === "queued" || job.state === "running";
        if (!live && !(file && !state.sent)) {
          end();
          document.getElementById("upload-phase").textContent = "Job " + job.state;
          document.getElementById("upload-job-link").href = form.dataset.jobs + job.id + "/";
          document.getElementById("upload-done").hidden = false;
          document.getElementById("upload-done").dataset.state = job.state;
        }
      }).finally(function () {
        if (!state.finished) { window.setTimeout(poll, 1000); }
      });
    }

    cancel.onclick = function () {
      if (state.upload) {
        request("POST", api + state.upload.id + "/cancel/", token);
      }
    };

    request("POST", api, token, metadata(form, file)).then(function (reply) {
      if (reply.status !== 201) { throw refusal(reply); }
      state.upload = reply.data;
      window.setTimeout(poll, 500);
      if (!file) {
        document.getElementById("upload-phase").textContent = "Glint fetches the link";
        return;
      }
      return sendResuming(reply.data.upload_url, token, file, function (sent) {
        progress.value = file.size ? Math.floor(100 * sent / file.size) : 100;
        percent.textContent = progress.value + "%";
        document.getElementById("upload-phase").textContent =
          sent === file.size ? "Sent; the repos verify their copies" : "Sending";
      }, function (offset) {
        state.resumed = (state.resumed || 0) + 1;
        status.dataset.resumed = String(state.resumed);
        document.getElementById("upload-phase").textContent =
          "The connection broke; resuming at byte " + offset;
      }).then(function (put) {
        state.sent = true;
        if (put.status !== 200) { throw refusal(put); }
      });
    }).catch(fail);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.id !== "upload-form") { return; }
    event.preventDefault();
    start(form);
  });
})();
