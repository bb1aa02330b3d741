"""Bot API methods about the bot itself (profile, commands, menu) and its chats and members."""

from __future__ import annotations

import json
from typing import Any

from .model import ApiError, _Chat, _Req
from .state import EmulatorState


class ChatsMixin(EmulatorState):
    """getMe and friends, commands and menu buttons, chats and their members."""

    async def _api_getMe(self, req: _Req) -> Any:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _api_logOut(self, req: _Req) -> Any:
        return True

    async def _api_close(self, req: _Req) -> Any:
        return True

    # -- commands and menu

    @staticmethod
    def _commands_key(params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), params.get("language_code", "")

    async def _api_setMyCommands(self, req: _Req) -> Any:
        self.commands[self._commands_key(req.params)] = req.params["commands"]
        return True

    async def _api_getMyCommands(self, req: _Req) -> Any:
        return self.commands.get(self._commands_key(req.params), [])

    async def _api_deleteMyCommands(self, req: _Req) -> Any:
        self.commands.pop(self._commands_key(req.params), None)
        return True

    async def _api_setChatMenuButton(self, req: _Req) -> Any:
        chat_id = req.params.get("chat_id")
        if chat_id is not None:
            self._chat_for(chat_id)
        self.menu_buttons[chat_id] = req.params.get("menu_button") or {"type": "default"}
        return True

    async def _api_getChatMenuButton(self, req: _Req) -> Any:
        chat_id = req.params.get("chat_id")
        return self.menu_buttons.get(chat_id, self.menu_buttons.get(None, {"type": "default"}))

    # -- chats and members

    async def _api_getChat(self, req: _Req) -> Any:
        chat = self._chat_for(req.params["chat_id"])
        return {
            **chat.obj,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def _member(self, chat: _Chat, user_id: int) -> dict[str, Any]:
        if user_id == self.bot_id:
            if chat.type != "private" and chat.bot_is_admin:
                return _administrator(self.bot_user)
            return {"status": "member", "user": self.bot_user}
        user = self._users.get(user_id)
        if user is None:
            raise ApiError(400, "Bad Request: user not found")
        if chat.type == "private":
            status = "member" if user_id == chat.id else "left"
            return {"status": status, "user": user.as_dict()}
        if user_id == chat.owner:
            return {"status": "creator", "user": user.as_dict(), "is_anonymous": False}
        if user_id in chat.admins:
            return _administrator(user.as_dict())
        if user_id in chat.members:
            return {"status": "member", "user": user.as_dict()}
        return {"status": "left", "user": user.as_dict()}

    async def _api_getChatMember(self, req: _Req) -> Any:
        chat = self._chat_for(req.params["chat_id"])
        return self._member(chat, req.params["user_id"])

    async def _api_getChatAdministrators(self, req: _Req) -> Any:
        chat = self._chat_for(req.params["chat_id"])
        if chat.type == "private":
            raise ApiError(400, "Bad Request: there are no administrators in the private chat")
        ids = ([chat.owner] if chat.owner else []) + [a for a in chat.admins if a != chat.owner]
        result = [self._member(chat, uid) for uid in ids]
        if chat.bot_is_admin:
            result.append(self._member(chat, self.bot_id))
        return result

    async def _api_getChatMemberCount(self, req: _Req) -> Any:
        chat = self._chat_for(req.params["chat_id"])
        return 2 if chat.type == "private" else len(chat.members) + 1


def _administrator(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": "administrator",
        "user": user,
        "can_be_edited": False,
        "is_anonymous": False,
        "can_manage_chat": True,
        "can_delete_messages": True,
        "can_manage_video_chats": True,
        "can_restrict_members": True,
        "can_promote_members": False,
        "can_change_info": True,
        "can_invite_users": True,
        "can_post_stories": False,
        "can_edit_stories": False,
        "can_delete_stories": False,
        "can_pin_messages": True,
        # Bot API 10.2, newer than api.json, but required by aiogram 3.31
        "can_send_welcome_messages": False,
    }
