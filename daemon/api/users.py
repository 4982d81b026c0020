"""/api/v1/users and /api/v1/audit."""

from __future__ import annotations

from aiohttp import web

from daemon.api.routing import Routes
from daemon.context import AUDIT, BODY, CLIENT_IP, PRINCIPAL, QUERY, USERS
from shared.models import Page
from shared.models.users import AuditEvent, AuditQuery, CreateUser, ResetToken, UpdateMe, UpdateUser, User, UserQuery

routes = Routes(prefix="/api/v1")
TAG = "users"


@routes.get("/users/me", summary="You", tag=TAG, response=User)
async def get_me(request: web.Request) -> User:
    principal = request[PRINCIPAL]
    return await request.app[USERS].get(principal, principal.user_id)


@routes.patch("/users/me", summary="Change your display name", tag=TAG, body=UpdateMe, response=User)
async def update_me(request: web.Request) -> User:
    return await request.app[USERS].update_me(request[PRINCIPAL], request[BODY])


@routes.get("/users", summary="Find users", tag=TAG, query=UserQuery, response=Page[User], access="admin")
async def list_users(request: web.Request) -> Page[User]:
    return await request.app[USERS].list(request[QUERY])


@routes.post("/users", summary="Create a user", tag=TAG, body=CreateUser, response=User, status=201, access="admin",
             errors=(409,))
async def create_user(request: web.Request) -> User:
    return await request.app[USERS].create_by_admin(request[PRINCIPAL], request[BODY], request[CLIENT_IP])


@routes.get("/users/{id}", summary="A user (admins, or yourself)", tag=TAG, response=User)
async def get_user(request: web.Request) -> User:
    return await request.app[USERS].get(request[PRINCIPAL], request.match_info["id"])


@routes.patch("/users/{id}", summary="Change a user's name, role or status", tag=TAG, body=UpdateUser, response=User,
              access="admin", errors=(409,))
async def update_user(request: web.Request) -> User:
    return await request.app[USERS].update(request[PRINCIPAL], request.match_info["id"], request[BODY], request[CLIENT_IP])


@routes.delete("/users/{id}", summary="Delete a user", tag=TAG, response=None, status=204, access="admin", errors=(409,))
async def delete_user(request: web.Request) -> None:
    await request.app[USERS].delete(request[PRINCIPAL], request.match_info["id"], request[CLIENT_IP])


@routes.post("/users/{id}/password-reset", summary="Issue a one-use password reset token", tag=TAG,
             response=ResetToken, status=201, access="admin")
async def issue_password_reset(request: web.Request) -> ResetToken:
    return await request.app[USERS].issue_reset(request[PRINCIPAL], request.match_info["id"], request[CLIENT_IP])


@routes.get("/audit", summary="The audit trail", tag="audit", query=AuditQuery, response=Page[AuditEvent],
            access="admin")
async def list_audit(request: web.Request) -> Page[AuditEvent]:
    return await request.app[AUDIT].list(request[QUERY])


def add_routes(app: web.Application) -> None:
    routes.add_to(app.router)
