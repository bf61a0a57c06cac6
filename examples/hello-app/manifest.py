#!/usr/bin/env python3
"""Prints the hello app's Kubernetes manifest: a ConfigMap holding app.py, a Deployment
running it in a stock python image (non-root, read-only, as the node's `restricted` Pod
Security level demands), and a Service on --port.

    python3 examples/hello-app/manifest.py --port 8000 > hello.yaml

On the development cluster stand-in nothing runs: the stand-in gives the Service the
address 127.0.0.1, so the gateway reaches whatever listens on --port there — the same
app.py, started by scripts/dev-node.sh. That is why the port is a parameter.
"""
import argparse
import pathlib

TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: hello-app
data:
  app.py: |
{app}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
spec:
  replicas: 1
  selector:
    matchLabels: {{app: hello}}
  template:
    metadata:
      labels: {{app: hello}}
    spec:
      securityContext:
        runAsNonRoot: true
        runAsUser: 65534
        seccompProfile: {{type: RuntimeDefault}}
      containers:
        - name: hello
          image: docker.io/library/python:3.13-alpine
          command: ["python3", "/app/app.py", "--port", "{port}"]
          ports: [{{containerPort: {port}}}]
          readinessProbe:
            httpGet: {{path: /, port: {port}}}
          resources:
            requests: {{cpu: 250m, memory: 64Mi}}
            limits: {{cpu: 250m, memory: 64Mi}}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {{drop: [ALL]}}
          volumeMounts:
            - {{name: app, mountPath: /app, readOnly: true}}
      volumes:
        - name: app
          configMap: {{name: hello-app}}
---
apiVersion: v1
kind: Service
metadata:
  name: hello
spec:
  selector: {{app: hello}}
  ports: [{{port: {port}, targetPort: {port}}}]
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    app = pathlib.Path(__file__).with_name("app.py").read_text()
    indented = "\n".join(("    " + line).rstrip() for line in app.splitlines())
    print(TEMPLATE.format(app=indented, port=args.port), end="")


if __name__ == "__main__":
    main()
