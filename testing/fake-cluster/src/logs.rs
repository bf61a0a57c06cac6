//! `GET /api/v1/namespaces/{ns}/pods/{pod}/log`: invented log lines.
//!
//! Every container has already written `log_lines` lines,
//! `fake log line {i} from {ns}/{pod}` (i from 1). `tailLines` keeps the last ones,
//! `timestamps` prefixes an RFC 3339 time, `limitBytes` cuts the output, and `follow=true`
//! keeps the response open with one more line every `log_interval` until the client goes
//! away, the Pod is deleted or the server shuts down.

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use tokio::sync::mpsc;

use crate::api::State;
use crate::util::{Query, RespBody, Target, bad_request, full, not_found, now_nanos};

fn line(i: usize, namespace: &str, pod: &str, timestamps: bool) -> String {
    if timestamps {
        format!("{} fake log line {i} from {namespace}/{pod}\n", now_nanos())
    } else {
        format!("fake log line {i} from {namespace}/{pod}\n")
    }
}

pub(crate) async fn answer(
    state: &Arc<State>,
    target: &Target,
    query: &Query,
) -> Response<RespBody> {
    let (Some(namespace), Some(pod_name)) = (target.namespace.clone(), target.name.clone()) else {
        return crate::util::no_such_resource();
    };
    let pod_path = format!("/api/v1/namespaces/{namespace}/pods/{pod_name}");
    let Some(pod) = state.get(&pod_path).await else {
        return not_found("pods", "", &pod_name);
    };
    let containers: Vec<String> = pod["spec"]["containers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    let container = match query.get("container").filter(|c| !c.is_empty()) {
        Some(c) if containers.iter().any(|x| x == c) => c.to_string(),
        Some(c) => return bad_request(&format!("container {c} is not valid for pod {pod_name}")),
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            return bad_request(&format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                containers.join(" ")
            ));
        }
    };
    let waiting = pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == container.as_str()))
        .and_then(|s| s["state"]["waiting"]["reason"].as_str());
    if let Some(reason) = waiting {
        return bad_request(&format!(
            "container \"{container}\" in pod \"{pod_name}\" is waiting to start: {reason}"
        ));
    }
    let tail = match query.get("tailLines") {
        None => None,
        Some(t) => match t.parse::<i64>() {
            Ok(n) => Some(n.max(0) as usize),
            Err(_) => return bad_request(&format!("invalid tailLines {t:?}")),
        },
    };
    let limit = match query.get("limitBytes") {
        None => None,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if n > 0 => Some(n),
            _ => return bad_request(&format!("invalid limitBytes {l:?}: must be greater than 0")),
        },
    };
    let timestamps = query.flag("timestamps");
    let total = state.options.log_lines;
    let first = total - tail.unwrap_or(total).min(total) + 1;

    if !query.flag("follow") {
        let mut text: String = (first..=total)
            .map(|i| line(i, &namespace, &pod_name, timestamps))
            .collect();
        if let Some(limit) = limit {
            text.truncate(limit.min(text.len()));
        }
        return text_response(full(text));
    }

    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(8);
    let mut shutdown = state.shutdown_signal();
    let interval = state.options.log_interval;
    let state = state.clone();
    tokio::spawn(async move {
        let mut sent = 0usize;
        let mut i = first;
        loop {
            if i > total {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = shutdown.changed() => return,
                    _ = tx.closed() => return,
                }
                if *shutdown.borrow() || state.get(&pod_path).await.is_none() {
                    return;
                }
            }
            let mut text = line(i, &namespace, &pod_name, timestamps);
            let mut last = false;
            if let Some(limit) = limit {
                if sent + text.len() >= limit {
                    text.truncate(limit - sent);
                    last = true;
                }
                sent += text.len();
            }
            if tx.send(Ok(Frame::data(Bytes::from(text)))).await.is_err() || last {
                return;
            }
            i += 1;
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    text_response(StreamBody::new(stream).boxed())
}

fn text_response(body: RespBody) -> Response<RespBody> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(body)
        .expect("a valid response")
}
