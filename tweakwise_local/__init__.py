"""The bundle's local AWS runtime: template.yaml run on this machine without Docker or an AWS account.

- `template`: reads template.yaml and resolves its intrinsic functions and conditions.
- `provision`: creates in moto the secrets, queues and tables the template declares.
- `functions`: runs a function's handler in process, with its template environment.
- `events`: what Lambda hands a handler (context, API Gateway and SQS events) and what it prints (EMF).
- `states`: runs the template's state machines.
- `sandbox`: an in-memory Tweakwise backend API; `credentials`: sandbox or live credentials.
- `api`, `queues`, `schedules`: the HTTP API routes, SQS event sources and schedules of the template.
- `run` (`make run`) and `invoke` (`make invoke`): the two entry points; `process`: `make run` as a
  subprocess, for tests and the fuzzer.
"""
