from app import db


def user_page(conn, request):
    user = db.find_user(conn, request.args["name"])
    if user is None:
        return 404, "no such user"
    return 200, f"<h1>{user[1]}</h1>"
