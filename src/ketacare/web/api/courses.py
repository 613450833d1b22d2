"""Treatment courses: plan, read, re-plan after a missed session, stop, calendar file."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from ketacare.app import courses as uc
from ketacare.web.auth import CurrentPrincipal, DbSession

router = APIRouter(tags=["courses"])


@router.post(
    "/patients/{patient_id}/courses",
    response_model=uc.CourseOut,
    status_code=status.HTTP_201_CREATED,
    summary="Plan a treatment course",
    description=(
        "Needs a signed eligibility review decided eligible, consent given and no active "
        "course. Plans with the clinic's calendar and CBT window; every dosing and CBT "
        "session becomes a scheduled row."
    ),
)
def plan_course(
    db: DbSession, principal: CurrentPrincipal, patient_id: int, body: uc.CourseCreate
) -> uc.CourseOut:
    return uc.plan_course(db, principal.actor, patient_id, body)


@router.get("/patients/{patient_id}/courses", response_model=list[uc.CourseOut])
def list_courses(db: DbSession, principal: CurrentPrincipal, patient_id: int) -> list[uc.CourseOut]:
    return uc.list_courses(db, principal.actor, patient_id)


@router.get("/courses/{course_id}", response_model=uc.CourseOut)
def get_course(db: DbSession, principal: CurrentPrincipal, course_id: int) -> uc.CourseOut:
    return uc.get_course(db, principal.actor, course_id)


@router.post(
    "/courses/{course_id}/replan",
    response_model=uc.CourseOut,
    summary="Mark sessions missed and plan the rest again",
    responses={409: {"description": "Stale version"}},
)
def replan_course(
    db: DbSession, principal: CurrentPrincipal, course_id: int, body: uc.ReplanRequest
) -> uc.CourseOut:
    return uc.replan_course(db, principal.actor, course_id, body)


@router.post(
    "/courses/{course_id}/stop",
    response_model=uc.CourseOut,
    summary="Stop a course; scheduled sessions are cancelled",
    responses={409: {"description": "Stale version"}},
)
def stop_course(
    db: DbSession, principal: CurrentPrincipal, course_id: int, body: uc.StopRequest
) -> uc.CourseOut:
    return uc.stop_course(db, principal.actor, course_id, body.reason, body.version)


@router.get(
    "/courses/{course_id}/calendar.ics",
    response_class=Response,
    summary="The course as an iCalendar file",
    responses={200: {"content": {"text/calendar": {}}}},
)
def course_calendar(db: DbSession, principal: CurrentPrincipal, course_id: int) -> Response:
    return ics_response(uc.course_calendar(db, principal.actor, course_id), course_id)


def ics_response(text: str, course_id: int) -> Response:
    return Response(
        text,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="course-{course_id}.ics"'},
    )
